"""The unit meshes of the shapes: one per name in ``scene.SHAPE_BOUNDS``, built once per worker.

Bevelled, lathed, extruded or displaced with ``bmesh`` (no operators), then fitted exactly to the
shape's bounds (placement relies on them) and shared by every sample's parts.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from synth_render.scene import SHAPE_BOUNDS
from synth_render.shapes import LATHES, PRISMS

_CONTACT_GAP = {"dome": 0.01}
"""Unit-frame gap between a shape's mesh and the bottom of its bounds."""

_SMOOTH = {"sphere", "cylinder", "cone", "torus", "capsule", "cup", "bottle", "rock_a", "rock_b", "rock_c", "blob",
           "rounded_cube", "car_body", "car_cabin", "tyre", "rim", "dome", "slab"}
"""Shapes shaded smooth (sharp edges above ~40 degrees stay sharp)."""


def build_shape(bpy: Any, name: str) -> Any:
    """The unit mesh of a shape, fitted exactly to its ``SHAPE_BOUNDS``, with one material slot."""
    import bmesh

    if name not in SHAPE_BOUNDS:
        raise ValueError(f"unknown shape {name!r}")
    mesh = bpy.data.meshes.new(f"synth-{name}")
    bm = bmesh.new()
    _RECIPES[name](bm)
    lo, hi = SHAPE_BOUNDS[name]
    # Liquid domes float a hair above their bounds' floor: a refracting face coplanar with the
    # table or floor they rest on renders black.
    _fit(bm, (lo[0], lo[1], lo[2] + _CONTACT_GAP.get(name, 0.0)), hi)
    bm.normal_update()
    bm.to_mesh(mesh)
    bm.free()
    if name in _SMOOTH:
        mesh.shade_smooth()
        mesh.set_sharp_from_angle(angle=math.radians(40 if name not in ("rock_a", "rock_b", "rock_c") else 70))
    mesh.materials.append(None)
    return mesh


def _fit(bm: Any, lo: tuple[float, float, float], hi: tuple[float, float, float]) -> None:
    """Scale and move the vertices so that their bounds are exactly ``lo``..``hi`` (flat axes stay flat)."""
    co = np.array([v.co[:] for v in bm.verts])
    cmin, cmax = co.min(axis=0), co.max(axis=0)
    span = np.where(cmax - cmin > 1e-9, cmax - cmin, 1.0)
    tlo, thi = np.asarray(lo), np.asarray(hi)
    out = tlo + (co - cmin) / span * (thi - tlo)
    for v, p in zip(bm.verts, out, strict=True):
        v.co = p.tolist()


def _cube(bm: Any) -> None:
    import bmesh

    bmesh.ops.create_cube(bm, size=1.0)


def _bevelled_cube(offset: float, segments: int) -> Any:
    def make(bm: Any) -> None:
        import bmesh

        bmesh.ops.create_cube(bm, size=1.0)
        bmesh.ops.bevel(bm, geom=list(bm.edges) + list(bm.verts), offset=offset, segments=segments,
                        affect="EDGES", profile=0.5)
    return make


def _uvsphere(bm: Any) -> None:
    import bmesh

    bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=0.5)


def _ico(bm: Any) -> None:
    import bmesh

    bmesh.ops.create_icosphere(bm, subdivisions=1, radius=0.5)


def _cone(r1: float, r2: float) -> Any:
    def make(bm: Any) -> None:
        import bmesh

        bmesh.ops.create_cone(bm, cap_ends=True, segments=32, radius1=r1, radius2=r2, depth=1.0)
    return make


def _plane(bm: Any) -> None:
    import bmesh

    bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=0.5)


def _torus(bm: Any, *, major: float = 0.35, minor: float = 0.15, segments: int = 32, rings: int = 12) -> None:
    verts = []
    for i in range(segments):
        a = 2 * math.pi * i / segments
        for j in range(rings):
            b = 2 * math.pi * j / rings
            r = major + minor * math.cos(b)
            verts.append(bm.verts.new((r * math.cos(a), r * math.sin(a), minor * math.sin(b))))
    for i in range(segments):
        for j in range(rings):
            i2, j2 = (i + 1) % segments, (j + 1) % rings
            bm.faces.new((verts[i * rings + j], verts[i2 * rings + j], verts[i2 * rings + j2], verts[i * rings + j2]))


def _lathe(profile: list[tuple[float, float]], *, segments: int = 32, closed: bool = False) -> Any:
    """A surface of revolution about +Z from (radius, z) points; points on the axis close the ends.

    ``closed``: the profile is a loop (last point joins the first), e.g. a tyre's cross-section.
    """
    def make(bm: Any) -> None:
        rings: list[list[Any]] = []
        for r, z in profile:
            if r <= 1e-9:
                rings.append([bm.verts.new((0.0, 0.0, z))])
            else:
                rings.append([bm.verts.new((r * math.cos(2 * math.pi * i / segments),
                                            r * math.sin(2 * math.pi * i / segments), z)) for i in range(segments)])
        pairs = list(itertools.pairwise(rings)) + ([(rings[-1], rings[0])] if closed else [])
        for a, b in pairs:
            for i in range(segments):
                i2 = (i + 1) % segments
                if len(a) == 1 and len(b) == 1:
                    continue
                if len(a) == 1:
                    bm.faces.new((a[0], b[i2], b[i]))
                elif len(b) == 1:
                    bm.faces.new((a[i], a[i2], b[0]))
                else:
                    bm.faces.new((a[i], a[i2], b[i2], b[i]))
        import bmesh

        bmesh.ops.recalc_face_normals(bm, faces=list(bm.faces))
    return make


def _prism(points: list[tuple[float, float]], *, bevel: float) -> Any:
    """A side profile (x, z) extruded along y and bevelled: car bodies and cabins."""
    def make(bm: Any) -> None:
        import bmesh

        front = [bm.verts.new((x, -0.5, z)) for x, z in points]
        back = [bm.verts.new((x, 0.5, z)) for x, z in points]
        n = len(points)
        bm.faces.new(front)
        bm.faces.new(list(reversed(back)))
        for i in range(n):
            j = (i + 1) % n
            bm.faces.new((front[i], back[i], back[j], front[j]))
        bmesh.ops.recalc_face_normals(bm, faces=list(bm.faces))
        bmesh.ops.bevel(bm, geom=list(bm.edges) + list(bm.verts), offset=bevel, segments=3, affect="EDGES",
                        profile=0.5, clamp_overlap=True)
    return make


def _displaced_ico(seed: int, *, amount: float, subdivisions: int, flat_bottom: float) -> Any:
    """An icosphere pushed in and out by a few seeded waves (deterministic: a fixed seed per shape)."""
    def make(bm: Any) -> None:
        import bmesh

        bmesh.ops.create_icosphere(bm, subdivisions=subdivisions, radius=0.5)
        rng = np.random.default_rng(seed)
        dirs = rng.normal(size=(6, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        freq = rng.uniform(1.5, 5.0, 6)
        phase = rng.uniform(0, 2 * math.pi, 6)
        for v in bm.verts:
            p = np.array(v.co[:])
            d = float(np.sum(np.sin(freq * (dirs @ p) * 2 * math.pi + phase) / freq)) * amount
            q = p * (1.0 + d)
            q[2] = max(q[2], -flat_bottom)
            v.co = q.tolist()
    return make


_RECIPES: dict[str, Any] = {
    "cube": _cube,
    "sphere": _uvsphere,
    "ico": _ico,
    "cylinder": _cone(0.5, 0.5),
    "cone": _cone(0.5, 0.0),
    "plane": _plane,
    "torus": _torus,
    "rounded_cube": _bevelled_cube(0.1, 3),
    "slab": _bevelled_cube(0.02, 2),
    "capsule": _lathe(LATHES["capsule"]),
    "cup": _lathe(LATHES["cup"], segments=40),
    "bottle": _lathe(LATHES["bottle"], segments=40),
    "dome": _lathe(LATHES["dome"]),
    "tyre": _lathe(LATHES["tyre"], closed=True),
    "rim": _lathe(LATHES["rim"], segments=24),
    "rock_a": _displaced_ico(11, amount=0.22, subdivisions=4, flat_bottom=0.3),
    "rock_b": _displaced_ico(23, amount=0.3, subdivisions=4, flat_bottom=0.25),
    "rock_c": _displaced_ico(37, amount=0.18, subdivisions=4, flat_bottom=0.35),
    "blob": _displaced_ico(5, amount=0.35, subdivisions=3, flat_bottom=0.5),
    "car_body": _prism(PRISMS["car_body"], bevel=0.06),
    "car_cabin": _prism(PRISMS["car_cabin"], bevel=0.05),
}
