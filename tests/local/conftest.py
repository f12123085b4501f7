"""Fixtures for local mode: tiny specs and datasets written by the fake renderer (no Blender)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders import LOCAL, spec
from local_helpers import build_dataset

from synth_contract.api import SynthDatasetSpec
from synth_contract.store import FileStore

HERE = Path(__file__).parent  # pytest puts it on sys.path (fakerender, local_helpers); subprocesses get PYTHONPATH


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
