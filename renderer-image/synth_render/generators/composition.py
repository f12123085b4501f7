"""Composition: arrangements (grid, row, stack, ring, cluster) with occlusion between objects.

Strata: arrangement, object count, spacing, camera azimuth, elevation. Objects are dropped at
their arrangement's spots onto a ground or table; a stack puts boxes on top of each other.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import Part, Scene, SceneObject, Shape

_LAYOUTS = ("grid", "row", "stack", "ring", "cluster")
_SHAPES: tuple[Shape, ...] = ("cube", "sphere", "cylinder", "cone", "ico", "rounded_cube", "capsule")


def _positions(layout: str, n: int, spacing: float, rng: np.random.Generator) -> list[tuple[float, float, int]]:
    """(x, y, level) for each object; level > 0 stacks objects on top of each other."""
    if layout == "grid":
        side = math.ceil(math.sqrt(n))
        return [((i % side - (side - 1) / 2) * spacing, (i // side - (side - 1) / 2) * spacing, 0) for i in range(n)]
    if layout == "row":
        return [((i - (n - 1) / 2) * spacing, 0.0, 0) for i in range(n)]
    if layout == "stack":
        towers = max(1, n // 3)
        return [((i % towers - (towers - 1) / 2) * spacing * 1.5, 0.0, i // towers) for i in range(n)]
    if layout == "ring":
        r = max(spacing * n / (2 * math.pi), spacing)
        return [(r * math.cos(2 * math.pi * i / n), r * math.sin(2 * math.pi * i / n), 0) for i in range(n)]
    return [(x, y, 0) for x, y in c.scatter(rng, n, 0.6 * spacing * math.sqrt(n), spacing * 0.7)]


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    layout = c.pick(_LAYOUTS, u[0])
    count = 3 + int(u[1] * 10)
    spacing = c.lerp(0.9, 1.8, u[2])
    azimuth = u[3] * 2 * math.pi
    spots = _positions(layout, count, spacing, rng)
    extent = max(math.hypot(x, y) for x, y, _ in spots) + 0.6
    kind: s.BackdropKind = "table" if rng.random() < 0.4 else "ground"
    bd = s.backdrop(config, rng, kind, extent=extent, facing=azimuth)
    objects: list[SceneObject] = []
    tower_top: dict[tuple[float, float], int] = {}
    for x, y, level in spots:
        shape: Shape = "rounded_cube" if layout == "stack" else _SHAPES[int(rng.integers(len(_SHAPES)))]
        size = 0.8 * float(rng.uniform(0.85, 1.0)) if layout != "stack" else 0.8 * (0.92 ** level)
        obj = SceneObject(id=len(objects) + 1, cls=c.label(shape),
                          parts=(Part(shape, c.material(rng)),), scale=(size, size, size),
                          rotation=(0.0, 0.0, round(float(rng.uniform(-0.3, 0.3) if layout == "stack"
                                                          else rng.uniform(0, 2 * math.pi)), 4)))
        below = tower_top.get((x, y))
        placed = bd.layout.stack(obj, below) if level > 0 and below is not None else bd.layout.drop(
            obj, x, y, on=bd.top, stackable=layout == "stack")
        if placed is not None:
            if layout == "stack":
                tower_top[(x, y)] = len(bd.layout.placed) - 1
            objects.append(replace(placed, id=len(objects) + 1))
    if not objects:
        objects = s.place_subjects(bd.layout, rng, [SceneObject(id=1, cls="cube", parts=(Part("cube", c.material(rng)),),
                                                                scale=(0.8, 0.8, 0.8))], radius=extent, on=bd.top)
    objects = s.add_clutter(rng, bd.layout, objects, share=0.2, size=0.3, radius=extent + 0.5, on=bd.top)
    top = max(o.location[2] for o in objects)
    world = s.world(config, rng, visible=rng.random() < 0.7)
    rise = max(top - bd.center[2], 0.4)
    cam = c.orbit_camera((0.0, 0.0, bd.center[2] + rise / 2), radius=max(extent, rise),
                         azimuth=azimuth, elevation=c.lerp(0.15, 1.2, u[4]), aspect=config.aspect, margin=0.8)
    return Scene(category=config.category, objects=tuple(objects), lights=s.lights(rng, world), camera=cam,
                 world=world, background=bd.parts,
                 params={"layout": layout, "count": count, "spacing": round(spacing, 4), "backdrop": kind})
