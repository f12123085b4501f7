"""Fixtures for local mode: tiny specs and datasets written by the fake renderer (no Blender)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # fakerender and local_helpers

from builders import LOCAL, spec  # noqa: E402
from local_helpers import build_dataset  # noqa: E402

from synth_contract.api import SynthDatasetSpec  # noqa: E402
from synth_contract.store import FileStore  # noqa: E402


@pytest.fixture
def tiny_spec(tmp_path: Path) -> SynthDatasetSpec:
    return spec(LOCAL, output=tmp_path / "out")


@pytest.fixture
def dataset(tiny_spec: SynthDatasetSpec) -> FileStore:
    return build_dataset(tiny_spec)


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for `synthctl` subprocesses: the fake renderer importable, no injected delays."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for k in ("FAKE_RENDER_DELAY", "FAKE_RENDER_FAIL", "FAKE_RENDER_FAIL_DIR"):
        env.pop(k, None)
    return env
