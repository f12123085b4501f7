"""`synthctl plan` and `simulate` include the index step: bytes read, time at a stated bandwidth, index storage."""

from __future__ import annotations

import json
from pathlib import Path

import builders
import yaml
from click.testing import CliRunner

from parallel_synth.commands.cli import cli
from synth_contract import planning


def _manifest(tmp_path: Path, **spec: object) -> str:
    path = tmp_path / "ds.yaml"
    path.write_text(yaml.safe_dump(builders.manifest(builders.wire(builders.CLUSTER, **spec))))
    return str(path)


def test_the_plan_of_the_500m_reference_run_reads_parts_not_petabytes(tmp_path: Path) -> None:
    m = _manifest(tmp_path, samples=500_000_000, shardSize=1000)
    res = CliRunner().invoke(cli, ["plan", m, "--json", "--bytes-per-sample", "5e6", "--index-bandwidth", "1e9"])
    assert res.exit_code == 0, res.output
    step = json.loads(res.stdout)["indexStep"]
    assert step["bytesReadOldPath"] >= 2.5e15  # the old path streamed 2.5 PB of tars...
    assert step["secondsOldPath"] >= 29 * 86400 * 0.99  # ...29 days at 1 GB/s
    assert step["bytesReadPerSample"] < 3000 and step["bytesRead"] < 2e12  # the parts: metadata only
    assert step["seconds"] == max(step["bytesRead"] / 1e9, 500_000_000 / planning.INDEX_SAMPLES_PER_CPU_SECOND)
    assert step["layout"].startswith("index/compacted/") and step["storageBytes"] > 0
    text = CliRunner().invoke(cli, ["plan", m, "--bytes-per-sample", "5e6"])
    assert "index step: reads" in text.output and "streaming every tar instead" in text.output


def test_a_small_plan_keeps_one_metadata_parquet_and_the_bandwidth_is_stated(tmp_path: Path) -> None:
    m = _manifest(tmp_path, samples=10_000, shardSize=100)
    slow = json.loads(CliRunner().invoke(cli, ["plan", m, "--json", "--index-bandwidth", "1e3"]).stdout)["indexStep"]
    fast = json.loads(CliRunner().invoke(cli, ["plan", m, "--json"]).stdout)["indexStep"]
    assert slow["layout"] == fast["layout"] == "index/metadata.parquet"
    assert slow["bandwidthBytesPerSecond"] == 1e3 and slow["seconds"] == slow["bytesRead"] / 1e3 > fast["seconds"]


def test_simulate_reports_the_index_step(tmp_path: Path) -> None:
    m = _manifest(tmp_path, samples=200, shardSize=50)
    res = CliRunner().invoke(cli, ["simulate", m, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["indexStep"]["samples"] == 200
    text = CliRunner().invoke(cli, ["simulate", m, "--quiet"])
    assert "index step: reads" in text.output
