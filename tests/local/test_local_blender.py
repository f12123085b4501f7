"""Local mode with the real renderer (Blender on the CPU, 64x64 at 4 spp): generate, stop, resume, validate."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from builders import LOCAL, RENDER, wire, write_manifest
from waiting import wait_for

from parallel_synth.dataset.checks import check_dataset
from synth_contract import planning
from synth_contract.store import FileStore

pytestmark = [pytest.mark.blender]
pytest.importorskip("bpy")

SYNTHCTL = [sys.executable, "-m", "parallel_synth.commands.cli"]


REAL = wire(LOCAL, render={**RENDER["render"], "passes": ["rgb", "depth", "segmentation"]},
            quality=RENDER["quality"])  # 64x64 at 4 spp: noisy


def test_generate_validate_preview(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", wire(REAL, output=tmp_path / "ignored", samples=8, shardSize=2), name="real")
    res = subprocess.run([*SYNTHCTL, "generate", str(manifest), "--out", str(tmp_path / "d"), "--workers", "2"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    root = tmp_path / "d" / "real" / "v1"
    report = check_dataset(FileStore(root))
    assert report.ok, report.problems
    assert pq.read_table(root / "index" / "metadata.parquet").num_rows == 8
    res = subprocess.run([*SYNTHCTL, "preview", str(root), "--out", str(tmp_path / "g.png")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "g.png").stat().st_size > 0


def test_interrupt_and_resume(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", wire(REAL, output=tmp_path / "ignored", samples=24, shardSize=4), name="real")
    out = tmp_path / "d"
    root = out / "real" / "v1"
    cmd = [*SYNTHCTL, "generate", str(manifest), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: list(root.glob("manifests/*.json")), timeout=300, what="a committed shard", proc=proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stdout + stderr
    committed = {p.name: p.stat().st_mtime_ns for p in (root / "manifests").glob("*.json")}
    assert 1 <= len(committed) < 6
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (root / "manifests").glob("*.json")
            if p.name in committed} == committed
    keys = pq.read_table(root / "index" / "metadata.parquet", columns=["key"]).column("key").to_pylist()
    assert sorted(keys) == [planning.sample_key(i) for i in range(24)]
    assert check_dataset(FileStore(root)).ok
