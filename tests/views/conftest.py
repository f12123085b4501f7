"""Fixtures for the multi-view tests: one shared Blender scene for in-process renders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def renderer() -> Iterator[Any]:
    """One Blender scene for the in-process render tests (as a worker process keeps it)."""
    pytest.importorskip("bpy")
    from synth_render.blender import BlenderRenderer

    r = BlenderRenderer(device="cpu")
    yield r
    r.close()
