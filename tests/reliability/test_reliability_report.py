"""scripts/reliability_report.py: the table says when its run happened and fails on every broken claim."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "reliability_report.py"


def clean(**over: Any) -> dict[str, Any]:
    r = {"name": "baseline", "faults": {}, "shards": 4, "samples": 12, "committed_samples": 12,
         "validate_ok": True, "status_matches": True, "counters_match": True, "preemptions_expected": "0",
         "retries_expected": "0", "phase": "Succeeded", "started": "2026-01-02T03:04:05+00:00", "seconds": 15.0}
    return {**r, **over}


def report(tmp_path: Path, results: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "run.json"
    src.write_text(json.dumps(results))
    return subprocess.run([sys.executable, str(SCRIPT), "--from-json", str(src), "--no-doc"],
                          capture_output=True, text=True, timeout=120)


def test_the_table_is_stamped_with_the_run_date_not_the_render_date(tmp_path: Path) -> None:
    out = report(tmp_path, [clean(), clean(name="node-loss", started="2026-01-02T03:09:00+00:00")])
    assert out.returncode == 0, out.stderr
    assert "1/1" not in out.stdout and "2/2 scenarios passed all checks (run of 2026-01-02 03:04 UTC" in out.stdout


@pytest.mark.parametrize(("broken", "shown"), [
    ({"double_commits": {"/box-data/data/d/v1/manifests/00000001.json": 2}}, "00000001.json x2"),
    ({"truth_problems": ["shard 1: the tar is not the one its manifest committed (sha256)"]}, "NO: shard 1"),
    ({"counters_match": False, "preemptions_status": 0, "preemptions_expected": "2"}, "**0 / 2**"),
])
def test_a_broken_claim_fails_the_report(tmp_path: Path, broken: dict[str, Any], shown: str) -> None:
    out = report(tmp_path, [clean(**broken)])
    assert out.returncode == 1 and "0/1 scenarios passed" in out.stdout and shown in out.stdout, out.stdout
