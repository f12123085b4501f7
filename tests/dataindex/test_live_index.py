"""The index while the run goes on: a run killed half-way leaves readable parts for exactly its committed
shards, the README's pyarrow / DuckDB / Hugging Face snippets and `synthctl query` read them (also on S3)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner
from index_helpers import NOW, commit_shards, make_spec
from waiting import wait_for

from parallel_synth.commands.cli import cli
from parallel_synth.dataset.files import committed_shards
from parallel_synth.dataset.index import index_files, live_summary, write_index
from synth_contract import layout
from synth_contract.store import FileStore, S3Store

README = Path(__file__).resolve().parents[2] / "README.md"
WRITER = str(Path(__file__).with_name("sequential_writer.py"))


def _readme_block(after: str, lang: str) -> str:
    text = README.read_text()
    at = text.index(after)
    block = re.search(rf"```{lang}\n(.*?)```", text[at:], re.S)
    assert block, f"no {lang} block after {after!r} in README.md"
    return block.group(1)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> FileStore:
    """A run of 8 shards SIGKILLed once two shards are committed (a part of a third may be there)."""
    base = tmp_path_factory.mktemp("killed")
    spec = make_spec(base, samples=32)
    root = base / "ds" / "v1"
    env = {**os.environ, "SYNTH_SPEC_JSON": json.dumps(spec.wire()), "FAKE_RENDER_SECONDS": "0.05"}
    proc = subprocess.Popen([sys.executable, WRITER, str(root)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(list((root / layout.MANIFESTS).glob("*.json"))) >= 2 if root.exists() else False,
                 timeout=120, what="two committed shards", proc=proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return FileStore(root)


def test_a_run_killed_half_way_has_readable_parts_for_exactly_its_committed_shards(killed_run: FileStore) -> None:
    committed = committed_shards(killed_run)
    assert 2 <= len(committed) < 8
    source, parts = index_files(killed_run)
    assert source == "parts" and parts == [layout.index_part_path(s) for s in committed]
    on_disk = {layout.shard_of(r, layout.INDEX_PARTS, ".parquet") for r in killed_run.list(layout.INDEX_PARTS)}
    assert set(committed) <= on_disk and len(on_disk - set(committed)) <= 1  # at most the shard being committed
    table = pads.dataset([str(killed_run.root / p) for p in parts], format="parquet").to_table()
    assert sorted(table.column("index").to_pylist()) == [i for s in committed for i in range(4 * s, 4 * s + 4)]
    spec = make_spec(killed_run.root.parents[1], samples=32)
    doc = live_summary(spec, "ds", killed_run, now=NOW)
    assert doc["samples"]["completed"] == 4 * len(committed) and doc["shards"]["completed"] == len(committed)
    assert doc["index"]["source"] == {"part": len(committed)}


def test_the_readme_snippets_read_the_parts_mid_run_locally_and_on_s3(
        killed_run: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, s3_client: Any,
        bucket: str, aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    committed = committed_shards(killed_run)
    s3 = S3Store(s3_client, bucket, "quickstart/v1")
    for shard in committed:  # the same committed shards, in a bucket
        for rel in (layout.manifest_path(shard), layout.index_part_path(shard)):
            s3.write_bytes(rel, killed_run.read_bytes(rel) or b"")
    (tmp_path / "data" / "quickstart").mkdir(parents=True)
    (tmp_path / "data" / "quickstart" / "v1").symlink_to(killed_run.root)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pyarrow_code = _readme_block("With pyarrow, locally and on S3", "python").replace("my-bucket", bucket)
    scope: dict[str, Any] = {}
    exec(compile(pyarrow_code, "README.md", "exec"), scope)
    n = 4 * len(committed)
    assert scope["parts"].count_rows() >= n and scope["remote"].count_rows() == n
    assert sum(scope["by_category"].num_rows for _ in [0]) >= 1
    other: dict[str, Any] = {}
    exec(compile(_readme_block("DuckDB and Hugging Face", "python"), "README.md", "exec"), other)
    assert other["live"].num_rows >= n
    out = capsys.readouterr().out
    assert "samples committed so far" in out and f"{n} samples committed in the bucket" in out


def test_the_readme_queries_run_mid_run_locally_and_on_s3(killed_run: FileStore, s3_endpoint: str, s3_client: Any,
                                                           bucket: str, aws_env: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    committed = committed_shards(killed_run)
    s3 = S3Store(s3_client, bucket, "quickstart/v1")
    for shard in committed:
        for rel in (layout.manifest_path(shard), layout.index_part_path(shard)):
            s3.write_bytes(rel, killed_run.read_bytes(rel) or b"")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    lines = [ln for ln in _readme_block("Category balance, and the ten worst", "sh").splitlines() if ln.strip()]
    assert len(lines) == 3
    outputs = []
    for line in lines:
        args = shlex.split(line.replace("./data/quickstart/v1", str(killed_run.root)).replace("my-bucket", bucket))
        assert args[:2] == ["synthctl", "query"]
        res = CliRunner().invoke(cli, args[1:])
        assert res.exit_code == 0, res.output
        outputs.append(res.stdout)
    balance = [ln.split() for ln in outputs[0].splitlines()[2:]]
    assert sum(int(row[1]) for row in balance) == 4 * len(committed)
    worst = [ln.split() for ln in outputs[1].splitlines()[2:]]
    scores = [float(row[3]) for row in worst]
    assert len(worst) == min(10, 4 * len(committed)) and scores == sorted(scores)
    assert json.loads(outputs[2]) == [{"samples": 4 * len(committed)}]


def test_query_reads_the_finished_index_once_written(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(spec, store)
    write_index(spec, "ds", store, now=NOW)
    store.delete(layout.index_part_path(0))  # the finished index no longer needs the parts
    assert index_files(store) == ("index", [layout.INDEX_PARQUET])
    res = CliRunner().invoke(cli, ["query", str(store.root), "--json", "SELECT count(*) AS n FROM samples"])
    assert res.exit_code == 0 and json.loads(res.stdout) == [{"n": 12}]


@pytest.mark.parametrize(("sql", "phrase"), [
    ("SELEC nonsense", "SQL: Parser Error"),
    ("SELECT nope FROM samples", "SQL: Binder Error"),
    ("SELECT * FROM other_table", "SQL: Catalog Error"),
    ("   ", "SQL: empty query"),
])
def test_query_bad_sql_is_exit_2_in_one_line(tmp_path: Path, sql: str, phrase: str) -> None:
    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(make_spec(tmp_path), store, [0])
    res = CliRunner().invoke(cli, ["query", str(store.root), sql])
    assert res.exit_code == 2 and phrase in res.output and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1


def test_query_refuses_a_part_that_is_not_parquet_with_exit_1(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(make_spec(tmp_path), store, [0, 1])
    store.write_bytes(layout.index_part_path(1), b"PAR1 but nothing else")
    res = CliRunner().invoke(cli, ["query", str(store.root), "SELECT count(*) FROM samples"])
    assert res.exit_code == 1 and "00000001.parquet is not a readable parquet file" in res.output, res.output
    assert "Traceback" not in res.output


def test_query_of_a_run_with_nothing_committed_yet_is_an_empty_table(tmp_path: Path) -> None:
    (tmp_path / "ds" / "v1").mkdir(parents=True)
    res = CliRunner().invoke(cli, ["query", str(tmp_path / "ds" / "v1"), "--json", "SELECT count(*) AS n FROM samples"])
    assert res.exit_code == 0 and json.loads(res.stdout) == [{"n": 0}]


def test_index_live_prints_the_figures_of_the_committed_shards_and_writes_nothing(killed_run: FileStore,
                                                                                   tmp_path: Path) -> None:
    spec = make_spec(killed_run.root.parents[1], samples=32)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(json.dumps({"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
                                    "metadata": {"name": "ds"}, "spec": spec.wire()}))
    before = sorted(p.name for p in killed_run.root.rglob("*"))
    res = CliRunner().invoke(cli, ["index", str(killed_run.root), "--manifest", str(manifest), "--live"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    committed = committed_shards(killed_run)
    assert doc["live"] is True and doc["samples"] == {"target": 32, "completed": 4 * len(committed)}
    assert sum(c["completed"] for c in doc["categories"].values()) == 4 * len(committed)
    assert doc["coverage"]["samples"] == 4 * len(committed)
    assert sorted(p.name for p in killed_run.root.rglob("*")) == before


def test_a_local_run_still_going_has_live_figures_and_index_columns(tmp_path: Path) -> None:
    from parallel_synth.dataset.index import IndexProblem, live_doc, part_columns

    spec = make_spec(tmp_path)
    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(spec, store, [0, 2])  # shard 1 not committed yet
    assert live_doc(store, now=NOW) is None  # not a local run (no local-run.json)
    store.write_bytes(layout.LOCAL_RUN_JSON, json.dumps({"spec": spec.wire()}).encode())
    doc = live_doc(store, now=NOW)
    assert doc is not None and doc["name"] == "ds" and doc["samples"]["completed"] == 8
    table = part_columns(store, ["key", "shard", "score"])
    assert sorted(set(table.column("shard").to_pylist())) == [0, 2] and table.num_rows == 8
    store.write_bytes(layout.LOCAL_RUN_JSON, b"[1, 2]")
    with pytest.raises(IndexProblem, match=r"local-run\.json"):
        live_doc(store, now=NOW)


@pytest.mark.parametrize("hostile", ["wrong-schema", "huge-row-group"])
def test_query_refuses_a_hostile_part_before_reading_it(tmp_path: Path, hostile: str) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from synth_contract.index_rows import INDEX_SCHEMA, MAX_ROW_GROUP_ROWS

    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(make_spec(tmp_path), store, [0, 1])
    n = MAX_ROW_GROUP_ROWS + 1
    table = (pa.table({"key": ["x"], "score": ["high"]}) if hostile == "wrong-schema"
             else pa.table({f.name: pa.nulls(n, f.type) for f in INDEX_SCHEMA}))
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=max(table.num_rows, 1))
    store.write_bytes(layout.index_part_path(1), buf.getvalue())
    res = CliRunner().invoke(cli, ["query", str(store.root), "SELECT count(*) FROM samples"])
    assert res.exit_code == 1 and "index/parts/00000001.parquet" in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_report_of_a_local_run_still_going_shows_its_committed_shards(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(spec, store, [0, 2])  # shard 1 not committed yet
    for shard in (0, 2):  # the report reads manifests and parts (thumbnails aside), never a tar for figures
        (store.root / layout.shard_path(shard)).write_bytes(b"not a tar")
    out = tmp_path / "report.html"
    res = CliRunner().invoke(cli, ["report", str(store.root), "--out", str(out)])
    assert res.exit_code == 2 and "dataset.json is missing" in res.output  # neither finished nor a run going on
    store.write_bytes(layout.LOCAL_RUN_JSON, json.dumps({"spec": spec.wire()}).encode())
    res = CliRunner().invoke(cli, ["report", str(store.root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "8 samples" in res.output and "live: 2 of 3 shards committed" in res.output
    page = out.read_text()
    assert "8 kept samples of 12 targeted" in page and "2 of 3 shards committed" in page


def test_report_with_a_manifest_is_live_over_a_bucket_mid_run(tmp_path: Path, s3_client: Any, bucket: str,
                                                              s3_endpoint: str, aws_env: None) -> None:
    spec = make_spec(tmp_path)
    local = FileStore(tmp_path / "ds" / "v1")
    commit_shards(spec, local, [1])
    s3 = S3Store(s3_client, bucket, "ds/v1")
    for rel in (layout.manifest_path(1), layout.index_part_path(1), layout.shard_path(1)):
        s3.write_bytes(rel, local.read_bytes(rel) or b"")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(json.dumps({"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
                                    "metadata": {"name": "ds"}, "spec": spec.wire()}))
    out = tmp_path / "report.html"
    args = ["report", f"s3://{bucket}/ds/v1", "--out", str(out), "--endpoint-url", s3_endpoint]
    res = CliRunner().invoke(cli, [*args, "--manifest", str(manifest)])
    assert res.exit_code == 0, res.output
    assert "live: 1 of 3 shards committed" in res.output and "4 kept samples of 12" in out.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: SynthDataset\nspec: {samples: -1}\n")
    res = CliRunner().invoke(cli, [*args, "--manifest", str(bad)])
    assert res.exit_code == 2 and "not a SynthDataset manifest" in res.output and "Traceback" not in res.output
