"""synthctl as a user runs it: a real subprocess, exit codes and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def synthctl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parallel_synth.commands.cli", *args],
        capture_output=True, text=True, input=stdin, cwd=ROOT, timeout=120,
    )


def test_help_lists_every_entry_point() -> None:
    out = synthctl("--help")
    assert out.returncode == 0
    for cmd in ["operator", "crds", "validate-manifest", "generate", "validate", "render-sample",
                "plan", "simulate", "preview"]:
        assert cmd in out.stdout


def test_crds_writes_the_generated_files(tmp_path: Path) -> None:
    out = synthctl("crds", "--out", str(tmp_path))
    assert out.returncode == 0
    for f in (ROOT / "crds").glob("*.yaml"):
        assert (tmp_path / f.name).read_text() == f.read_text()


def test_validate_manifest_accepts_the_quickstart() -> None:
    out = synthctl("validate-manifest", "examples/quickstart.yaml")
    assert out.returncode == 0, out.stderr
    assert "valid SynthDataset 'quickstart'" in out.stdout


def test_validate_manifest_lists_each_problem_with_its_path() -> None:
    bad = """
apiVersion: parallelsynth.io/v1alpha1
kind: SynthDataset
metadata: {name: bad}
spec:
  samples: 10
  workers: {min: 3, max: 1}
  output: {uri: "s3://"}
  image: r:1
  colour: blue
"""
    out = synthctl("validate-manifest", "-", stdin=bad)
    assert out.returncode == 1
    assert "spec.workers: min (3) must be <= max (1)" in out.stderr
    assert "spec.output.uri:" in out.stderr
    assert "spec.colour: unknown field" in out.stderr


def test_validate_manifest_refuses_unreadable_yaml() -> None:
    out = synthctl("validate-manifest", "-", stdin="a: [unclosed\n")
    assert out.returncode == 2
    assert "cannot read manifest" in out.stderr
