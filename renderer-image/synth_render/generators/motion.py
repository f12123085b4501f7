"""Motion: objects moving fast enough to blur (rendered with Cycles motion blur).

Strata: speed, direction, object count, share of airborne objects, camera azimuth. Objects on
the ground stand on it without overlapping; airborne ones fall (negative vertical speed).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.placement import object_bounds, overlap
from synth_render.scene import Part, Scene, SceneObject, Shape

_SHAPES: tuple[Shape, ...] = ("sphere", "cube", "ico", "cylinder", "rounded_cube", "capsule")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    speed = c.lerp(0.05, 0.6, u[0])
    heading = u[1] * 2 * math.pi
    count = 2 + int(u[2] * 5)
    airborne = u[3]
    azimuth = u[4] * 2 * math.pi
    bd = s.backdrop(config, rng, "ground", extent=3.0, facing=azimuth)
    objects: list[SceneObject] = []
    for i in range(count):
        shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
        size = float(rng.uniform(0.5, 1.0))
        h = heading + float(rng.uniform(-0.4, 0.4))
        sp = speed * float(rng.uniform(0.5, 1.2)) * (1 if rng.random() < 0.8 else 0)
        up = rng.random() < airborne
        obj = SceneObject(id=i + 1, cls=c.label(shape), parts=(Part(shape, c.material(rng)),), scale=(size, size, size),
                          rotation=(0.0, 0.0, round(float(rng.uniform(0, 2 * math.pi)), 4)))
        placed = bd.layout.scatter(obj, rng, radius=2.4)
        if placed is None:
            continue
        lift = round(float(rng.uniform(0.5, 1.8)), 4)
        lo, hi = object_bounds(placed)
        lifted = (lo + np.array([0, 0, lift]), hi + np.array([0, 0, lift]))
        if up and not any(overlap(lifted, b) for b in bd.layout.placed[:-1]):  # lifted into free air, falling
            bd.layout.placed[-1] = lifted
            placed = replace(placed, location=(placed.location[0], placed.location[1],
                                               round(placed.location[2] + lift, 4)))
            vel = (round(sp * math.cos(h), 4), round(sp * math.sin(h), 4), round(-max(sp, 0.1) * 0.5, 4))
        else:
            vel = (round(sp * math.cos(h), 4), round(sp * math.sin(h), 4), 0.0)
        objects.append(replace(placed, id=len(objects) + 1, velocity=vel))
    if not objects:
        objects = s.place_subjects(bd.layout, rng, [SceneObject(id=1, cls="sphere", parts=(Part("sphere", c.material(rng)),),
                                                                scale=(0.7, 0.7, 0.7))], radius=2.4)
    world = s.world(config, rng, prefer=s.OUTDOOR, visible=True)
    cam = c.orbit_camera((0.0, 0.0, 0.6), radius=3.2, azimuth=azimuth,
                         elevation=float(rng.uniform(0.15, 0.6)), aspect=config.aspect, margin=0.8)
    return Scene(category=config.category, objects=tuple(objects), lights=s.lights(rng, world), camera=cam,
                 world=world, background=bd.parts,
                 params={"speed": round(speed, 4), "heading": round(heading, 4), "count": count,
                         "airborne": round(airborne, 4)})
