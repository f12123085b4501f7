"""Fixtures for the asset-library tests: a generated sample library (the local S3 is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sample_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's sample library (5 classes x 2 assets, GLB/OBJ/PLY/STL) written once."""
    from synth_render.assets.sample_library import write_library

    return write_library(tmp_path_factory.mktemp("lib") / "props", per_class=2)
