"""Geometry: assortments of primitive shapes of varied size, proportion and count.

Strata: dominant shape, object count, size, camera azimuth and elevation.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import PRIMITIVES, Part, Scene, SceneObject

_SHAPES = tuple(p for p in PRIMITIVES if p != "plane")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    dominant = c.pick(_SHAPES, u[0])
    count = 2 + int(u[1] * 6)
    size = c.lerp(0.6, 1.6, u[2])
    objects = []
    for i, (x, y) in enumerate(c.scatter(rng, count, 1.2 + count * 0.35, size * 1.2)):
        shape = dominant if rng.random() < 0.5 else _SHAPES[int(rng.integers(len(_SHAPES)))]
        s = size * float(rng.uniform(0.6, 1.3))
        stretch = (s * float(rng.uniform(0.6, 1.5)), s * float(rng.uniform(0.6, 1.5)), s * float(rng.uniform(0.6, 1.8)))
        obj = SceneObject(
            id=i + 1, cls=shape, parts=(Part(shape, c.material(rng)),),
            location=c.r3((x, y, c.HALF_HEIGHT[shape] * stretch[2])),
            rotation=(0.0, 0.0, round(float(rng.uniform(0, 2 * math.pi)), 4)), scale=c.r3(stretch),
        )
        objects.append(obj)
    extent = 1.2 + count * 0.35 + size
    cam = c.orbit_camera((0.0, 0.0, size * 0.4), radius=extent, azimuth=u[3] * 2 * math.pi,
                         elevation=c.lerp(0.25, 1.0, u[4]), aspect=config.aspect, margin=0.8)
    return Scene(
        category=config.category, objects=tuple(objects), lights=c.key_lights(rng), camera=cam,
        world=c.sky(rng), background=(c.ground(rng),),
        params={"dominant": dominant, "count": count, "size": round(size, 4)},
    )
