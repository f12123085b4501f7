"""Fixtures of the closed-loop tests: the renderer's fake renderer (no Blender) and the CRD's CEL evaluator importable."""

from __future__ import annotations

import sys
from pathlib import Path

_RENDERER_TESTS = Path(__file__).resolve().parent.parent / "renderer"
if str(_RENDERER_TESTS) not in sys.path:
    sys.path.insert(0, str(_RENDERER_TESTS))  # fake_renderer.FakeRenderer (paints frames, no Blender)

_API_TESTS = Path(__file__).resolve().parent.parent / "api"
if str(_API_TESTS) not in sys.path:
    sys.path.append(str(_API_TESTS))  # cel_eval.cel_violations (the CRD's CEL rules, as the API server runs them)
