"""Helpers shared by the install tests (paths, subprocess, YAML)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "parallel-synth"
MANIFESTS = ROOT / "manifests"


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its text output; raise with its stderr when it fails."""
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}{out.stdout}")
    return out


def load_all(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]

