"""Geometry: assortments of primitive shapes of varied size, proportion and count.

Strata: dominant shape, object count, size, camera azimuth and elevation. Shapes stand on a
ground, against a wall or on a table (never inside each other), lit by an HDRI.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import PRIMITIVES, Part, Scene, SceneObject

_SHAPES = tuple(p for p in PRIMITIVES if p != "plane")
_BACKDROPS: tuple[s.BackdropKind, ...] = ("ground", "ground", "wall", "table")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    dominant = c.pick(_SHAPES, u[0])
    count = 2 + int(u[1] * 6)
    size = c.lerp(0.6, 1.6, u[2])
    azimuth = u[3] * 2 * math.pi
    radius = 1.2 + count * 0.35
    objects = []
    for i in range(count):
        shape = dominant if rng.random() < 0.5 else _SHAPES[int(rng.integers(len(_SHAPES)))]
        sz = size * float(rng.uniform(0.6, 1.3))
        stretch = (sz * float(rng.uniform(0.6, 1.5)), sz * float(rng.uniform(0.6, 1.5)), sz * float(rng.uniform(0.6, 1.8)))
        objects.append(SceneObject(id=i + 1, cls=shape, parts=(Part(shape, c.material(rng)),),
                                   rotation=(0.0, 0.0, round(float(rng.uniform(0, 2 * math.pi)), 4)),
                                   scale=c.r3(stretch)))
    kind = _BACKDROPS[int(rng.integers(len(_BACKDROPS)))]
    bd = s.backdrop(config, rng, kind, extent=radius + size * 0.5, facing=azimuth)
    placed = s.place_subjects(bd.layout, rng, objects, radius=radius, on=bd.top)
    placed = s.add_clutter(rng, bd.layout, placed, share=0.25, size=size * 0.35, radius=radius + size, on=bd.top)
    world = s.world(config, rng, visible=rng.random() < 0.7)
    cam = c.orbit_camera((0.0, 0.0, bd.center[2] + size * 0.4), radius=radius + size * 0.5, azimuth=azimuth,
                         elevation=c.lerp(0.25, 1.0, u[4]), aspect=config.aspect, margin=0.8)
    return Scene(
        category=config.category, objects=tuple(placed), lights=s.lights(rng, world), camera=cam,
        world=world, background=bd.parts,
        params={"dominant": dominant, "count": count, "size": round(size, 4), "backdrop": kind},
    )
