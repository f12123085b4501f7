"""Composition: arrangements (grid, row, stack, ring, cluster) with occlusion between objects.

Strata: arrangement, object count, spacing, camera azimuth, elevation.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Scene, SceneObject

_LAYOUTS = ("grid", "row", "stack", "ring", "cluster")


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
    objects: list[SceneObject] = []
    size = 0.8
    for i, (x, y, level) in enumerate(_positions(layout, count, spacing, rng)):
        shape = "cube" if layout == "stack" else c.choose(rng, ("cube", "sphere", "cylinder", "cone", "ico"))
        obj = c.prop(rng, i + 1, shape, (x, y), size, z=size * (level + 0.5) if layout == "stack" else None)
        objects.append(obj)
    extent = max(math.hypot(o.location[0], o.location[1]) for o in objects) + size
    top = max(o.location[2] for o in objects)
    cam = c.orbit_camera((0.0, 0.0, top / 2), radius=max(extent, top), azimuth=u[3] * 2 * math.pi,
                         elevation=c.lerp(0.15, 1.2, u[4]), aspect=config.aspect, margin=0.8)
    return Scene(category=config.category, objects=tuple(objects), lights=c.key_lights(rng), camera=cam,
                 world=c.sky(rng), background=(c.ground(rng),),
                 params={"layout": layout, "count": count, "spacing": round(spacing, 4)})
