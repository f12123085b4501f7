"""Camera: one scene seen through varied lenses, heights, rolls and apertures.

Strata: focal length (log scale), elevation, roll, aperture (depth of field), azimuth.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Scene


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    focal = round(14 * (135 / 14) ** u[0], 3)
    elevation = c.lerp(0.05, 1.35, u[1])
    roll = c.lerp(-0.35, 0.35, u[2])
    fstop = 0.0 if u[3] < 0.6 else round(c.lerp(1.4, 5.6, (u[3] - 0.6) / 0.4), 3)
    objects = [c.prop(rng, i + 1, c.choose(rng, ("cube", "sphere", "cylinder", "cone", "ico")), p,
                      float(rng.uniform(0.6, 1.3)))
               for i, p in enumerate(c.scatter(rng, 4 + int(rng.integers(4)), 2.6, 1.1))]
    cam = c.orbit_camera((0.0, 0.0, 0.4), radius=float(rng.uniform(1.8, 3.2)), azimuth=u[4] * 2 * math.pi,
                         elevation=elevation, focal_mm=focal, aspect=config.aspect, margin=0.8, roll=roll,
                         fstop=fstop)
    return Scene(category=config.category, objects=tuple(objects), lights=c.key_lights(rng), camera=cam,
                 world=c.sky(rng), background=(c.ground(rng),),
                 params={"focal_mm": focal, "elevation": round(elevation, 4), "roll": round(roll, 4),
                         "fstop": fstop})
