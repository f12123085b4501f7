"""Pure 4x4 transforms of the scene description (numpy only, no Blender)."""

from __future__ import annotations

import math

import numpy as np

from synth_render.scene import Vec3


def trs(location: Vec3, rotation: Vec3, scale: Vec3) -> np.ndarray:
    """4x4 matrix of translation @ rotation (Euler XYZ) @ scale, as Blender composes ``matrix_world``."""
    cx, cy, cz = (math.cos(a) for a in rotation)
    sx, sy, sz = (math.sin(a) for a in rotation)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rz @ ry @ rx @ np.diag(scale)
    m[:3, 3] = location
    return m
