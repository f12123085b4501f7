"""Fixtures of the closed-loop tests: the renderer's fake renderer importable (no Blender)."""

from __future__ import annotations

import sys
from pathlib import Path

_RENDERER_TESTS = Path(__file__).resolve().parent.parent / "renderer"
if str(_RENDERER_TESTS) not in sys.path:
    sys.path.insert(0, str(_RENDERER_TESTS))  # fake_renderer.FakeRenderer (paints frames, no Blender)
