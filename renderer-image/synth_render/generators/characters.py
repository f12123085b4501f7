"""Characters: articulated humanoid figures built from primitives, in varied poses and clothing.

Strata: number of figures, arm pose, leg stride, body height, camera azimuth.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Material, Part, Scene, SceneObject


def _figure(rng: np.random.Generator, oid: int, x: float, y: float, height: float, arms: float,
            stride: float) -> SceneObject:
    skin = Material(color=c.hsv(0.07, float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.35, 0.95))), roughness=0.6)
    shirt = c.material(rng, metallic=0.0, roughness=0.8)
    pants = c.material(rng, pattern="plain", metallic=0.0, roughness=0.8)
    k = height / 1.8
    leg, torso = 0.85 * k, 0.6 * k
    a = arms * math.pi * 0.8
    sw = stride * 0.5
    parts = (
        Part("cylinder", pants, location=(0.0, -0.1 * k, leg / 2), rotation=(sw, 0.0, 0.0), scale=(0.13 * k, 0.13 * k, leg)),
        Part("cylinder", pants, location=(0.0, 0.1 * k, leg / 2), rotation=(-sw, 0.0, 0.0), scale=(0.13 * k, 0.13 * k, leg)),
        Part("cylinder", shirt, location=(0.0, 0.0, leg + torso / 2), scale=(0.25 * k, 0.38 * k, torso)),
        Part("sphere", skin, location=(0.0, 0.0, leg + torso + 0.14 * k), scale=(0.24 * k, 0.22 * k, 0.28 * k)),
        Part("cylinder", shirt, location=(0.0, -0.26 * k, leg + torso - 0.25 * k * math.cos(a)),
             rotation=(a, 0.0, 0.0), scale=(0.09 * k, 0.09 * k, 0.55 * k)),
        Part("cylinder", shirt, location=(0.0, 0.26 * k, leg + torso - 0.25 * k * math.cos(a)),
             rotation=(-a, 0.0, 0.0), scale=(0.09 * k, 0.09 * k, 0.55 * k)),
    )
    return SceneObject(id=oid, cls="person", parts=parts, location=c.r3((x, y, 0.0)),
                       rotation=(0.0, 0.0, round(float(rng.uniform(0, 2 * math.pi)), 4)))


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    count = 1 + int(u[0] * 4)
    arms = u[1]
    stride = c.lerp(0.0, 0.6, u[2])
    height = c.lerp(1.4, 2.0, u[3])
    objects = [_figure(rng, i + 1, x, y, height * float(rng.uniform(0.9, 1.1)), arms, stride)
               for i, (x, y) in enumerate(c.scatter(rng, count, 0.5 + 0.6 * count, 1.0))]
    cam = c.orbit_camera((0.0, 0.0, height * 0.5), radius=max(height * 0.7, 0.5 + 0.6 * count),
                         azimuth=u[4] * 2 * math.pi, elevation=float(rng.uniform(0.05, 0.5)), aspect=config.aspect,
                         margin=1.0, focal_mm=40.0)
    return Scene(category=config.category, objects=tuple(objects), lights=c.key_lights(rng), camera=cam,
                 world=c.sky(rng), background=(c.ground(rng),),
                 params={"count": count, "arms": round(arms, 4), "stride": round(stride, 4),
                         "height": round(height, 4)})
