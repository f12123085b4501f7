"""The geometry of the unit shapes without Blender: lathe profiles and convex-hull points.

``blender.meshes`` builds the render meshes from the profiles here; ``physics`` gives the
rigid-body engine the convex hull of the same shapes (points fitted to ``scene.SHAPE_BOUNDS``
exactly as the meshes are). Hull points are conservative: round shapes use the true circle
(64 segments) around the 32-40 segment polygons of the meshes, bevelled boxes their unbevelled
corners, so a mesh never pokes out of its hull by more than a fraction of a millimetre per metre.
Displaced rocks and blobs are approximated by their bounding ellipsoid.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from synth_render.scene import SHAPE_BOUNDS


def _capsule_profile() -> list[tuple[float, float]]:
    """A cylinder with elliptic caps (caps 0.2 tall in the unit frame, so scaled limbs look round)."""
    pts = [(0.0, -0.5)]
    for k in range(1, 6):
        a = k / 6 * math.pi / 2
        pts.append((0.5 * math.sin(a), -0.3 - 0.2 * math.cos(a)))
    pts += [(0.5, -0.3), (0.5, 0.3)]
    for k in range(1, 6):
        a = k / 6 * math.pi / 2
        pts.append((0.5 * math.cos(a), 0.3 + 0.2 * math.sin(a)))
    return [*pts, (0.0, 0.5)]


def _dome_profile() -> list[tuple[float, float]]:
    return [(0.0, 0.0), *[(0.5 * math.cos(k / 8 * math.pi / 2), 0.5 * math.sin(k / 8 * math.pi / 2))
                          for k in range(0, 8)], (0.0, 0.5)]


LATHES: dict[str, list[tuple[float, float]]] = {
    "capsule": _capsule_profile(),
    "cup": [(0.0, -0.5), (0.47, -0.5), (0.5, -0.45), (0.5, 0.5), (0.45, 0.5), (0.45, -0.4), (0.0, -0.4)],
    "bottle": [(0.0, -0.5), (0.47, -0.5), (0.5, -0.45), (0.5, 0.05), (0.42, 0.2), (0.24, 0.3), (0.19, 0.36),
               (0.19, 0.46), (0.22, 0.48), (0.22, 0.5), (0.0, 0.5)],
    "dome": _dome_profile(),
    "tyre": [(0.32, -0.2), (0.45, -0.2), (0.49, -0.16), (0.5, -0.08), (0.5, 0.08), (0.49, 0.16),
             (0.45, 0.2), (0.32, 0.2)],
    "rim": [(0.0, 0.5), (0.12, 0.5), (0.2, 0.3), (0.5, 0.3), (0.5, -0.5), (0.44, -0.5), (0.44, 0.15),
            (0.0, 0.15)],
}
"""(radius, z) profiles revolved about +Z (``tyre`` is a closed loop)."""

PRISMS: dict[str, list[tuple[float, float]]] = {
    "car_body": [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.15), (0.44, 0.42), (0.16, 0.5), (-0.42, 0.5), (-0.5, 0.3)],
    "car_cabin": [(-0.5, -0.5), (0.5, -0.5), (0.18, 0.5), (-0.32, 0.5)],
}
"""Side profiles (x, z) extruded along y from -0.5 to 0.5."""

_SEGMENTS = 64


def _circle(r: float, z: float) -> np.ndarray:
    a = np.arange(_SEGMENTS) * (2 * math.pi / _SEGMENTS)
    return np.stack([r * np.cos(a), r * np.sin(a), np.full(_SEGMENTS, z)], axis=1)


def _revolve(profile: list[tuple[float, float]]) -> np.ndarray:
    return np.concatenate([_circle(r, z) if r > 1e-9 else np.array([[0.0, 0.0, z]]) for r, z in profile])


def _sphere(n_rings: int = 16) -> np.ndarray:
    rings = [np.array([[0.0, 0.0, 0.5], [0.0, 0.0, -0.5]])]
    for k in range(1, n_rings):
        t = math.pi * k / n_rings
        rings.append(_circle(0.5 * math.sin(t), 0.5 * math.cos(t)))
    return np.concatenate(rings)


def _box() -> np.ndarray:
    return np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])


def _raw_points(name: str) -> np.ndarray:
    if name in ("cube", "rounded_cube", "slab", "plane"):
        return _box()
    if name in ("sphere", "ico", "rock_a", "rock_b", "rock_c", "blob"):
        return _sphere()
    if name == "cylinder":
        return np.concatenate([_circle(0.5, -0.5), _circle(0.5, 0.5)])
    if name == "cone":
        return np.concatenate([_circle(0.5, -0.5), np.array([[0.0, 0.0, 0.5]])])
    if name == "torus":  # the outer half of the tube, revolved: the torus's convex hull
        return np.concatenate([_circle(0.35 + 0.15 * math.cos(b), 0.15 * math.sin(b))
                               for b in np.linspace(-math.pi / 2, math.pi / 2, 9)])
    if name in LATHES:
        return _revolve(LATHES[name])
    if name in PRISMS:
        pts = PRISMS[name]
        return np.array([[x, y, z] for x, z in pts for y in (-0.5, 0.5)])
    raise ValueError(f"unknown shape {name!r}")


@lru_cache(maxsize=64)
def _hull_points(name: str) -> np.ndarray:
    pts = _raw_points(name)
    lo, hi = (np.asarray(b, dtype=np.float64) for b in SHAPE_BOUNDS[name])
    cmin, cmax = pts.min(axis=0), pts.max(axis=0)
    span = np.where(cmax - cmin > 1e-9, cmax - cmin, 1.0)
    out = lo + (pts - cmin) / span * (hi - lo)  # fitted to the bounds as blender.meshes fits its meshes
    out.setflags(write=False)
    return out


def hull_points(name: str) -> np.ndarray:
    """Points (N, 3) whose convex hull contains the unit mesh of ``name`` (read-only, cached)."""
    return _hull_points(name)
