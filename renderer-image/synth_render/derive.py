"""Derived versions: a new version that re-renders only the low scorers of an earlier one.

With ``spec.derivedFrom: {version, rerender: {belowScore}}`` the worker walks the earlier
version's shard alongside its own indices (both in index order, one streaming pass): a sample
that was kept there with a score of at least ``belowScore`` (and the same category) is copied,
its metadata marked ``derived: {from, copied: true}`` and keeping the seed it was rendered with;
any other index (a low scorer, a quarantined sample, a missing shard) is rendered again with this
version's seed and render settings and marked ``derived: {from, copied: false, oldScore}``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synth_contract import layout
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import FileStore, S3Store, Store
from synth_render import shards
from synth_render.sample import json_bytes


def sibling_store(store: Store, version: str, other: str) -> Store | None:
    """The store of another version of the same dataset ({uri}/{dataset}/v{other}), if derivable."""
    if isinstance(store, FileStore) and store.root.name == f"v{version}":
        return FileStore(store.root.parent / f"v{other}")
    if isinstance(store, S3Store) and store.prefix.rsplit("/", 1)[-1] == f"v{version}":
        head = store.prefix.rsplit("/", 1)[0] if "/" in store.prefix else ""
        return S3Store(store.client, store.bucket, f"{head}/v{other}" if head else f"v{other}")
    return None


class OldShard:
    """The earlier version's samples of one shard, read once in order."""

    def __init__(self, spec: SynthDatasetSpec, store: Store | None, shard: int, tmp: Path) -> None:
        assert spec.derived_from is not None
        self.version = spec.derived_from.version
        self.below = spec.derived_from.rerender.below_score
        self._it: Iterator[tuple[str, dict[str, bytes]]] = iter(())
        self._head: tuple[str, dict[str, bytes]] | None = None
        if store is None or not store.exists(layout.manifest_path(shard)):
            return
        local = Path(tempfile.mkdtemp(dir=tmp)) / "old.tar"
        if store.download_file(layout.shard_path(shard), local):
            self._it = shards.read_samples(local)
            self._head = next(self._it, None)

    def take(self, key: str, category: str) -> tuple[dict[str, bytes] | None, float | None]:
        """(files to copy, old score): files when the old sample is kept and scores >= belowScore."""
        while self._head is not None and self._head[0] < key:
            self._head = next(self._it, None)
        if self._head is None or self._head[0] != key:
            return None, None
        meta = shards.sample_metadata(self._head[1])
        q = meta.get("quality") or {}
        score = float(q.get("score") or 0.0)
        if q.get("passed") is False or score < self.below or meta.get("category") != category:
            return None, score
        return dict(self._head[1]), score


def copied(files: dict[str, bytes], *, version: str, old_version: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    """An old sample's files with its metadata moved to this version (pixels untouched)."""
    meta = shards.sample_metadata(files)
    meta["version"] = version
    meta["derived"] = {"from": old_version, "copied": True}
    out = dict(files)
    out["json"] = json_bytes(meta)
    return out, meta


def rerendered(files: dict[str, bytes], meta: dict[str, Any], *, old_version: str,
               old_score: float | None) -> tuple[dict[str, bytes], dict[str, Any]]:
    """A re-rendered sample's files with ``derived`` in its metadata."""
    meta = {**meta, "derived": {"from": old_version, "copied": False, "oldScore": old_score}}
    out = dict(files)
    out["json"] = json_bytes(meta)
    return out, meta
