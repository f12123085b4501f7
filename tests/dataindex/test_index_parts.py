"""Index parts written at commit, the index built from them, and every bad part refused by name."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from index_helpers import NOW, commit_shards, make_spec

from parallel_synth.commands.cli import cli
from parallel_synth.dataset.checks import check_dataset
from parallel_synth.dataset.index import IndexProblem, ReadCounter, shard_rows, write_index
from synth_contract import index_rows, layout, planning
from synth_contract.store import FileStore


def _dataset(tmp_path: Path) -> tuple[Any, FileStore]:
    spec = make_spec(tmp_path)
    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(spec, store)
    return spec, store


def _manifest(store: FileStore, shard: int) -> dict[str, Any]:
    return json.loads(store.read_bytes(layout.manifest_path(shard)) or b"")


def _recommit_part(store: FileStore, shard: int, data: bytes, rows: int) -> None:
    """Replace a shard's part and make its manifest agree, so only the part's content is wrong."""
    store.write_bytes(layout.index_part_path(shard), data)
    man = _manifest(store, shard)
    man["indexPart"] = index_rows.part_entry(shard, data, rows)
    store.write_bytes(layout.manifest_path(shard), json.dumps(man).encode())


def test_every_committed_shard_has_the_part_its_manifest_names(tmp_path: Path) -> None:
    spec, store = _dataset(tmp_path)
    for shard in range(planning.shard_count(spec)):
        entry = _manifest(store, shard)["indexPart"]
        data = store.read_bytes(layout.index_part_path(shard))
        assert entry["path"] == layout.index_part_path(shard) and entry["rows"] == 4
        assert index_rows.part_problems(data, entry, shard=shard) == []


def test_the_index_from_parts_equals_the_index_from_tars_row_for_row(tmp_path: Path) -> None:
    spec, store = _dataset(tmp_path)
    from_tars = [row for shard in range(3) for row in shard_rows(store, shard)[0]]
    counter = ReadCounter()
    doc = write_index(spec, "ds", store, now=NOW, counter=counter)
    from_parts = pq.read_table(store.root / layout.INDEX_PARQUET).to_pylist()
    assert from_parts == from_tars and len(from_parts) == 12
    assert counter.tars == 0 and doc["index"]["source"] == {"part": 3}
    assert doc["samples"]["completed"] == 12 and sum(c["completed"] for c in doc["categories"].values()) == 12
    assert doc["commits"] == {"fenced": 3, "unfenced": 0}


def test_the_index_never_reads_a_tar_when_every_shard_has_a_part(tmp_path: Path) -> None:
    spec, store = _dataset(tmp_path)
    for shard in range(3):  # tars that cannot be read at all: the index must not need them
        (store.root / layout.shard_path(shard)).write_bytes(b"not a tar")
    doc = write_index(spec, "ds", store, now=NOW)
    assert doc["samples"]["completed"] == 12
    per_sample = doc["index"]["bytesReadPerSample"]
    assert 0 < per_sample < 10_000  # metadata only (a kilobyte or so), whatever the images weigh


def test_a_dataset_written_before_parts_is_indexed_from_its_tars(tmp_path: Path) -> None:
    spec, store = _dataset(tmp_path)
    expected = [row for shard in range(3) for row in shard_rows(store, shard)[0]]
    for shard in range(3):
        man = _manifest(store, shard)
        del man["indexPart"]
        store.write_bytes(layout.manifest_path(shard), json.dumps(man).encode())
        store.delete(layout.index_part_path(shard))
    doc = write_index(spec, "ds", store, now=NOW)
    assert doc["index"]["source"] == {"tar": 3}
    assert pq.read_table(store.root / layout.INDEX_PARQUET).to_pylist() == expected


def _bad_part(kind: str, store: FileStore) -> str:
    """Damage shard 1's part; returns a phrase the one-line message must contain."""
    rel = layout.index_part_path(1)
    data = store.read_bytes(rel) or b""
    if kind == "missing":
        store.delete(rel)
        return "missing"
    if kind == "truncated":
        store.write_bytes(rel, data[: len(data) // 2])
        return "sha256"
    if kind == "other-shard":
        store.write_bytes(rel, store.read_bytes(layout.index_part_path(2)) or b"")
        return "sha256"
    if kind == "wrong-schema":
        buf = io.BytesIO()
        pq.write_table(pa.table({"key": ["x"], "score": ["high"]}), buf)
        _recommit_part(store, 1, buf.getvalue(), 1)
        return "does not have the index schema"
    if kind == "huge-row-group":
        n = index_rows.MAX_ROW_GROUP_ROWS + 1
        table = pa.table({f.name: pa.nulls(n, f.type) for f in index_rows.INDEX_SCHEMA})
        buf = io.BytesIO()
        pq.write_table(table, buf, row_group_size=n)
        _recommit_part(store, 1, buf.getvalue(), n)
        return "row group 0 has 1,000,001 rows"
    if kind == "not-parquet":
        _recommit_part(store, 1, b"PAR1" + b"\xff" * 100, 4)
        return "not a readable parquet file"
    raise AssertionError(kind)


BAD_PARTS = ["missing", "truncated", "other-shard", "wrong-schema", "huge-row-group", "not-parquet"]


@pytest.mark.parametrize("kind", BAD_PARTS)
def test_index_refuses_a_bad_part_naming_its_shard_unless_rebuilt_from_shards(tmp_path: Path, kind: str) -> None:
    spec, store = _dataset(tmp_path)
    phrase = _bad_part(kind, store)
    with pytest.raises(IndexProblem, match="shard 1") as err:
        write_index(spec, "ds", store, now=NOW)
    assert phrase in str(err.value) and "--rebuild-from-shards" in str(err.value)
    assert not store.exists(layout.DATASET_JSON) and not store.exists(layout.INDEX_PARQUET)
    counter = ReadCounter()
    doc = write_index(spec, "ds", store, now=NOW, rebuild_from_shards=True, counter=counter)
    assert doc["index"]["source"] == {"part": 2, "tar": 1} and doc["samples"]["completed"] == 12
    assert 0 < counter.tars == (store.size(layout.shard_path(1)) or 0)  # that one shard's tar, no other


@pytest.mark.parametrize("kind", ["missing", "truncated", "wrong-schema"])
def test_synthctl_index_exits_1_naming_the_shard_in_one_line(tmp_path: Path, kind: str) -> None:
    spec, store = _dataset(tmp_path)
    _bad_part(kind, store)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(json.dumps({"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
                                    "metadata": {"name": "ds"}, "spec": spec.wire()}))
    res = CliRunner().invoke(cli, ["index", str(store.root), "--manifest", str(manifest)])
    assert res.exit_code == 1, res.output
    assert "shard 1" in res.output and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    ok = CliRunner().invoke(cli, ["index", str(store.root), "--manifest", str(manifest), "--rebuild-from-shards"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("kind", BAD_PARTS)
def test_validate_names_the_shard_of_a_bad_part(tmp_path: Path, kind: str) -> None:
    spec, store = _dataset(tmp_path)
    write_index(spec, "ds", store, now=NOW)
    assert check_dataset(store).problems == []
    _bad_part(kind, store)
    problems = check_dataset(store).problems
    assert problems and all(p.where == layout.index_part_path(1) for p in problems), problems
    assert {p.code for p in problems} <= {"bad-index-part", "missing-index-part"}


def test_validate_exits_1_on_a_missing_part(tmp_path: Path) -> None:
    spec, store = _dataset(tmp_path)
    write_index(spec, "ds", store, now=NOW)
    store.delete(layout.index_part_path(2))
    res = CliRunner().invoke(cli, ["validate", str(store.root)])
    assert res.exit_code == 1 and "index/parts/00000002.parquet" in res.output, res.output


def test_a_large_dataset_gets_a_folder_of_compacted_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from parallel_synth.dataset import index

    spec, store = _dataset(tmp_path)
    monkeypatch.setattr(index, "SINGLE_FILE_MAX_SAMPLES", 10)  # the line, moved under this 12-sample dataset
    monkeypatch.setattr(index, "COMPACT_SAMPLES", 8)  # two shards of 4 per file
    doc = write_index(spec, "ds", store, now=NOW)
    files = sorted(store.list(layout.INDEX_COMPACTED))
    assert files == [layout.compacted_path(0, 1), layout.compacted_path(2, 2)]
    assert not store.exists(layout.INDEX_PARQUET) and layout.INDEX_COMPACTED + "/" in doc["layout"]["index"]
    rows = [r for f in files for r in pq.read_table(store.root / f).to_pylist()]
    assert [r["index"] for r in rows] == list(range(12))


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_committed_shard_whose_part_is_lost_is_rendered_again_and_its_part_put_back(tmp_path: Path,
                                                                                      damage: str) -> None:
    """Resume treats the part like the tar: a shard is committed only with both whole."""
    from fake_renderer import FakeRenderer

    from synth_render.manifests import verify_shard
    from synth_render.worker import run_shard

    spec, store = _dataset(tmp_path)
    rel = layout.index_part_path(1)
    good = store.read_bytes(rel) or b""
    if damage == "missing":
        store.delete(rel)
    else:
        store.write_bytes(rel, good[: len(good) // 2])
    assert verify_shard(store, 1) != []
    fake = FakeRenderer()
    out = run_shard(spec, "ds", 1, store=store, renderer=fake)
    assert out.status == "committed" and fake.calls, out
    assert store.read_bytes(rel) == good and verify_shard(store, 1, deep=True) == []
    again = run_shard(spec, "ds", 1, store=store, renderer=FakeRenderer())
    assert again.status == "skipped"
