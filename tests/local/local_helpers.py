"""Helpers for local-mode tests: datasets written by the fake renderer (specs come from builders.LOCAL)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import fakerender

from parallel_synth.dataset.index import write_index
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import FileStore

FAKE_RENDERER = "fakerender:run_shard"


def build_dataset(spec: SynthDatasetSpec, name: str = "tiny") -> FileStore:
    """A complete dataset rendered in-process by the fake renderer, with its index."""
    root = layout.dataset_root(spec.output.uri, name, spec.version)
    for shard in range(planning.shard_count(spec)):
        out = fakerender.run_shard(spec, name, shard, store=root)
        assert out["status"] == "committed"
    files = FileStore(Path(root.removeprefix("file://")))
    write_index(spec, name, files, now=datetime(2026, 1, 1, tzinfo=UTC))
    return files


def recommit(files: FileStore, shard: int, data: bytes) -> None:
    """Replace a shard's tar and make its manifest agree (so only the content is wrong)."""
    (files.root / layout.shard_path(shard)).write_bytes(data)
    man_path = files.root / layout.manifest_path(shard)
    man = json.loads(man_path.read_text())
    man.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    man_path.write_text(json.dumps(man))
