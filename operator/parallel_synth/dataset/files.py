"""Reading a dataset through a ``Store``: strict reads and the shards a folder lists."""

from __future__ import annotations

import json
from typing import Any

from synth_contract import layout
from synth_contract.store import Store


def read(files: Store, rel: str) -> bytes:
    """The file's bytes; ``FileNotFoundError`` when it does not exist."""
    with files.open(rel) as f:
        return f.read()


def read_json(files: Store, rel: str) -> Any:
    return json.loads(read(files, rel))


def numbered(files: Store, folder: str, suffix: str) -> list[int]:
    """The shard numbers of the ``{folder}/{shard:08d}{suffix}`` files, sorted."""
    return sorted(n for rel in files.list(folder) if (n := layout.shard_of(rel, folder, suffix)) is not None)


def committed_shards(files: Store) -> list[int]:
    """Shards that have a manifest (the commit marker), sorted."""
    return numbered(files, layout.MANIFESTS, ".json")
