"""Materials: a few large objects whose surfaces vary: pattern, metal, roughness, glass.

Strata: texture pattern, metallic/roughness regime, transmission, pattern scale, camera azimuth.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import PATTERNS, Material, Part, Scene, SceneObject

_REGIMES = ("matte", "glossy", "metal", "brushed", "glass", "emissive")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    pattern = c.pick(PATTERNS, u[0])
    regime = c.pick(_REGIMES, u[1])
    count = 1 + int(rng.integers(4))
    objects = []
    for i, (x, y) in enumerate(c.scatter(rng, count, 0.4 + 0.7 * count, 1.4)):
        base = c.material(rng, pattern=pattern)
        mat = Material(
            color=base.color, color2=base.color2, pattern=pattern,
            pattern_scale=round(c.lerp(2.0, 20.0, u[3]), 3),
            roughness={"matte": 0.9, "glossy": 0.1, "metal": 0.15, "brushed": 0.45, "glass": 0.02,
                       "emissive": 0.5}[regime],
            metallic=1.0 if regime in ("metal", "brushed") else 0.0,
            transmission=round(c.lerp(0.7, 1.0, u[2]), 3) if regime == "glass" else 0.0,
            emission=2.0 if regime == "emissive" else 0.0,
            bump=base.bump,
        )
        shape = c.choose(rng, ("sphere", "cube", "torus", "cylinder", "ico"))
        s = float(rng.uniform(0.9, 1.3))
        objects.append(SceneObject(id=i + 1, cls=shape, parts=(Part(shape, mat),),
                                   location=c.r3((x, y, c.HALF_HEIGHT[shape] * s)),
                                   rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)), scale=(s, s, s)))
    cam = c.orbit_camera((0.0, 0.0, 0.5), radius=0.8 + 0.7 * count, azimuth=u[4] * 2 * math.pi,
                         elevation=float(rng.uniform(0.2, 0.7)), aspect=config.aspect, margin=1.0)
    return Scene(category=config.category, objects=tuple(objects), lights=c.key_lights(rng), camera=cam,
                 world=c.sky(rng, strength=1.5), background=(c.ground(rng),),
                 params={"pattern": pattern, "regime": regime, "count": count})
