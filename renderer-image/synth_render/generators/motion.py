"""Motion: objects moving fast enough to blur (rendered with Cycles motion blur).

Strata: speed, direction, object count, share of airborne objects, camera azimuth.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Scene


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    speed = c.lerp(0.05, 0.6, u[0])
    heading = u[1] * 2 * math.pi
    count = 2 + int(u[2] * 5)
    airborne = u[3]
    objects = []
    for i, (x, y) in enumerate(c.scatter(rng, count, 2.4, 1.2)):
        shape = c.choose(rng, ("sphere", "cube", "ico", "cylinder"))
        size = float(rng.uniform(0.5, 1.0))
        h = heading + float(rng.uniform(-0.4, 0.4))
        s = speed * float(rng.uniform(0.5, 1.2)) * (1 if rng.random() < 0.8 else 0)
        up = rng.random() < airborne
        z = c.HALF_HEIGHT[shape] * size + (float(rng.uniform(0.5, 1.8)) if up else 0.0)
        vz = round(-s * 0.5, 4) if up else 0.0
        objects.append(c.prop(rng, i + 1, shape, (x, y), size, z=z,
                              velocity=(round(s * math.cos(h), 4), round(s * math.sin(h), 4), vz)))
    cam = c.orbit_camera((0.0, 0.0, 0.6), radius=3.2, azimuth=u[4] * 2 * math.pi,
                         elevation=float(rng.uniform(0.15, 0.6)), aspect=config.aspect, margin=0.8)
    return Scene(category=config.category, objects=tuple(objects), lights=c.key_lights(rng), camera=cam,
                 world=c.sky(rng), background=(c.ground(rng),),
                 params={"speed": round(speed, 4), "heading": round(heading, 4), "count": count,
                         "airborne": round(airborne, 4)})
