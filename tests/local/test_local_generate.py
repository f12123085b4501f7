"""`synthctl generate` end to end with the fake renderer: pool, resume after Ctrl-C, retries, index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from builders import LOCAL, wire, write_manifest
from local_helpers import FAKE_RENDERER
from waiting import wait_for

from parallel_synth.dataset.checks import check_dataset
from synth_contract import planning
from synth_contract.store import FileStore

SYNTHCTL = [sys.executable, "-m", "parallel_synth.commands.cli"]


def generate(manifest: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SYNTHCTL, "generate", str(manifest), "--out", str(out), "--workers", "2", "--renderer", FAKE_RENDERER,
         *extra],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def keys_of(root: Path) -> list[str]:
    return pq.read_table(root / "index" / "metadata.parquet", columns=["key"]).column("key").to_pylist()


def test_generate_then_validate(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    manifest = write_manifest(tmp_path / "tiny.yaml", wire(LOCAL, output=tmp_path / "ignored"), name="tiny")
    res = generate(manifest, tmp_path / "data", subprocess_env)
    assert res.returncode == 0, res.stderr
    root = tmp_path / "data" / "tiny" / "v1"
    # where the data is and how to load it
    assert f"Data: {root}" in res.stdout
    assert "wds.WebDataset(" in res.stdout and "pq.read_table(" in res.stdout
    # progress lines without a TTY: plain text, no escape sequences
    assert "110/110 samples (100%)" in res.stdout
    assert "\x1b" not in res.stdout
    report = check_dataset(FileStore(root))
    assert report.ok, report.problems
    assert keys_of(root) == [planning.sample_key(i) for i in range(110)]
    summary = json.loads((root / "dataset.json").read_text())
    assert summary["samples"] == {"target": 110, "completed": 110}
    assert summary["categories"]["fluids"] == {"target": 10, "completed": 10, "quarantined": 0}
    assert summary["spec"]["seed"] == 3
    # one parquet row group per shard: the index was written shard by shard
    assert pq.ParquetFile(root / "index" / "metadata.parquet").num_row_groups == 11
    # a second run finds nothing to do and leaves the dataset as it is
    before = (root / "dataset.json").stat().st_mtime_ns
    again = generate(manifest, tmp_path / "data", subprocess_env)
    assert again.returncode == 0, again.stderr
    assert "0 rendered now, 11 earlier" in again.stdout and "already complete" in again.stdout
    assert (root / "dataset.json").stat().st_mtime_ns == before


def test_ctrl_c_then_rerun_resumes_without_rerendering(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    manifest = write_manifest(tmp_path / "tiny.yaml", wire(LOCAL, output=tmp_path / "ignored"), name="tiny")
    out = tmp_path / "data"
    root = out / "tiny" / "v1"
    env = {**subprocess_env, "FAKE_RENDER_DELAY": "0.05"}  # 0.5 s per shard
    proc = subprocess.Popen(
        [*SYNTHCTL, "generate", str(manifest), "--out", str(out), "--workers", "2", "--renderer", FAKE_RENDERER],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for(lambda: list(root.glob("manifests/*.json")), timeout=60, what="a committed shard", proc=proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "run the same command again to resume" in stdout
    first = {p.name: p.stat().st_mtime_ns for p in (root / "manifests").glob("*.json")}
    assert 1 <= len(first) < 11
    assert not (root / "dataset.json").exists()

    res = generate(manifest, out, subprocess_env)
    assert res.returncode == 0, res.stderr
    assert f"{len(first)} earlier" in res.stdout
    # shards committed by the first run were not rendered again
    assert {p.name: p.stat().st_mtime_ns for p in (root / "manifests").glob("*.json") if p.name in first} == first
    keys = keys_of(root)
    assert len(keys) == len(set(keys)) == 110
    assert sorted(keys) == [planning.sample_key(i) for i in range(110)]
    assert check_dataset(FileStore(root)).ok


def test_failed_shard_is_retried(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    manifest = write_manifest(tmp_path / "tiny.yaml", wire(LOCAL, output=tmp_path / "x"), name="tiny")
    env = {**subprocess_env, "FAKE_RENDER_FAIL": "4:2", "FAKE_RENDER_FAIL_DIR": str(tmp_path)}
    res = generate(manifest, tmp_path / "data", env)
    assert res.returncode == 0, res.stderr
    assert "shard 4: RuntimeError: injected failure 1 (retry 1/2)" in res.stdout
    assert check_dataset(FileStore(tmp_path / "data" / "tiny" / "v1")).ok


def test_shard_out_of_retries_fails_the_run_and_rerun_finishes(tmp_path: Path,
                                                             subprocess_env: dict[str, str]) -> None:
    manifest = write_manifest(tmp_path / "tiny.yaml", wire(LOCAL, output=tmp_path / "x"), name="tiny")
    env = {**subprocess_env, "FAKE_RENDER_FAIL": "7:3", "FAKE_RENDER_FAIL_DIR": str(tmp_path)}
    res = generate(manifest, tmp_path / "data", env)
    assert res.returncode == 1
    assert "shard 7: RuntimeError: injected failure 3" in res.stderr
    root = tmp_path / "data" / "tiny" / "v1"
    assert not (root / "dataset.json").exists()
    assert len(list((root / "manifests").glob("*.json"))) == 10
    res = generate(manifest, tmp_path / "data", subprocess_env)
    assert res.returncode == 0, res.stderr
    assert "1 rendered now, 10 earlier" in res.stdout


def test_changed_spec_under_the_same_version_is_refused(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    manifest = write_manifest(tmp_path / "tiny.yaml", wire(LOCAL, output=tmp_path / "x"), name="tiny")
    assert generate(manifest, tmp_path / "data", subprocess_env).returncode == 0
    write_manifest(manifest, wire(LOCAL, output=tmp_path / "x", seed=4), name="tiny")
    res = generate(manifest, tmp_path / "data", subprocess_env)
    assert res.returncode != 0
    assert "changed: seed" in res.stderr


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_core_groups_split_the_machine() -> None:
    from parallel_synth.local.pool import core_groups

    assert core_groups([0, 1, 2, 3], 2) == [[0, 1], [2, 3]]
    assert core_groups([0, 1, 2], 2) == [[0, 1], [2]]
    assert core_groups([0, 1], 3) == [[0], [1], [0]]


def test_generate_to_s3_then_validate(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {**subprocess_env, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket="synth")
        manifest = write_manifest(tmp_path / "tiny.yaml",
                                  wire(LOCAL, output={"uri": "s3://synth/datasets", "endpointUrl": endpoint}), name="tiny")
        res = subprocess.run(
            [*SYNTHCTL, "generate", str(manifest), "--workers", "2", "--renderer", FAKE_RENDERER],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "Data: s3://synth/datasets/tiny/v1" in res.stdout
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="synth", Prefix="datasets/tiny/v1/")["Contents"]}
        assert {"datasets/tiny/v1/dataset.json", "datasets/tiny/v1/index/metadata.parquet"} <= keys
        res = subprocess.run(
            [*SYNTHCTL, "validate", "s3://synth/datasets/tiny/v1", "--endpoint-url", endpoint],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "110 samples" in res.stdout
    finally:
        server.stop()


def test_workers_that_cannot_start_stop_the_run(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    manifest = write_manifest(tmp_path / "tiny.yaml", wire(LOCAL, output=tmp_path / "x"), name="tiny")
    res = subprocess.run(
        [*SYNTHCTL, "generate", str(manifest), "--out", str(tmp_path / "data"), "--workers", "2",
         "--renderer", "fakerender:crash_on_import", "--log-dir", str(tmp_path / "logs")],
        env={**subprocess_env, "FAKE_RENDER_CRASH": "1"}, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert res.returncode == 1
    assert "worker processes died 3 times in a row" in res.stderr
    assert str(tmp_path / "logs") in res.stderr
