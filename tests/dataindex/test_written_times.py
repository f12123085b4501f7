"""Every time the renderer and the index write is RFC 3339 with a ``Z``, as the operator's status and Events
(``synth_contract.times.format_time``): a script comparing ``committedAt`` with ``status`` times as text,
or a parser that only takes ``Z``, sees one format (issue #24 section 5: manifests wrote ``+00:00``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from index_helpers import NOW, commit_shards, make_spec

from parallel_synth.dataset.index import write_index
from parallel_synth.local.lock import output_lock
from synth_contract import layout
from synth_contract.store import FileStore
from synth_contract.times import parse_time

ZULU = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_manifests_and_dataset_json_write_times_with_z(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(spec, store)
    committed = json.loads(store.read_bytes(layout.manifest_path(0)) or b"")["committedAt"]
    assert ZULU.match(committed) and parse_time(committed) is not None
    doc = write_index(spec, "ds", store, now=NOW)
    assert doc["createdAt"] == "2026-01-01T00:00:00Z"
    assert json.loads(store.read_bytes(layout.DATASET_JSON) or b"")["createdAt"] == "2026-01-01T00:00:00Z"


def test_the_output_lock_names_its_start_with_z(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    with output_lock(lock, now=NOW):
        assert json.loads(lock.read_text())["started"] == "2026-01-01T00:00:00Z"
