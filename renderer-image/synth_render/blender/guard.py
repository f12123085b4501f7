"""A friendly import guard for Blender's ``bpy`` (the only door to Blender in synth_render), and small helpers
every Blender module shares (silencing Blender on stdout, a bare node material)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    import bpy as _bpy
except ImportError as _exc:  # pragma: no cover - depends on the environment
    _bpy = None
    _error: ImportError | None = _exc
else:
    _error = None


class BlenderUnavailable(RuntimeError):
    """Raised when rendering is asked for but ``bpy`` cannot be imported."""


def require_bpy() -> Any:
    """The ``bpy`` module, or a clear error naming the fix."""
    if _bpy is None:
        raise BlenderUnavailable(
            "Blender's Python module 'bpy' is not importable "
            f"({_error}); install it with: pip install 'parallel-synth[render]' (Python 3.11)"
        )
    return _bpy


@contextmanager
def quiet_stdout(enabled: bool) -> Iterator[None]:
    """Silence Blender's progress lines on fd 1 (our logs go to stderr as JSON)."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def bare_material(bpy: Any, name: str) -> tuple[Any, Any]:
    """A new node material holding only its Material Output node: ``(material, output node)``."""
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender < 5.0 creates node trees on request only
        mat.use_nodes = True
    nt = mat.node_tree
    for n in list(nt.nodes):
        if n.type != "OUTPUT_MATERIAL":
            nt.nodes.remove(n)
    return mat, next(n for n in nt.nodes if n.type == "OUTPUT_MATERIAL")
