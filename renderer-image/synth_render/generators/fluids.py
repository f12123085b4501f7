"""Fluids: liquids in glasses, droplets and puddles: refraction and glossy reflections.

Strata: scene kind, liquid tint, index of refraction, count, camera azimuth.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Material, Part, Scene, SceneObject

_KINDS = ("glasses", "droplets", "puddles")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    kind = c.pick(_KINDS, u[0])
    tint = c.hsv(u[1], c.lerp(0.0, 0.8, u[1]), 1.0)
    ior = round(c.lerp(1.30, 1.50, u[2]), 4)
    count = 2 + int(u[3] * 5)
    liquid = Material(color=tint, roughness=0.02, transmission=1.0, ior=ior)
    glass = Material(color=(0.95, 0.95, 0.95), roughness=0.01, transmission=1.0, ior=1.5)
    objects = []
    for i, (x, y) in enumerate(c.scatter(rng, count, 0.6 + 0.5 * count, 0.9)):
        if kind == "glasses":
            h = float(rng.uniform(0.5, 1.0))
            fill = float(rng.uniform(0.3, 0.9))
            objects.append(SceneObject(id=i + 1, cls="glass", location=c.r3((x, y, 0.0)), parts=(
                Part("cylinder", glass, location=(0.0, 0.0, h / 2), scale=(0.5, 0.5, h)),
                Part("cylinder", liquid, location=(0.0, 0.0, h * fill / 2), scale=(0.46, 0.46, h * fill)),
            )))
        elif kind == "droplets":
            s = float(rng.uniform(0.5, 1.0))
            objects.append(SceneObject(id=i + 1, cls="droplet", location=c.r3((x, y, s * 0.3)),
                                       scale=c.r3((s, s, s * 0.6)), parts=(Part("sphere", liquid),)))
        else:
            s = float(rng.uniform(0.8, 1.6))
            objects.append(SceneObject(id=i + 1, cls="puddle", location=c.r3((x, y, 0.01)),
                                       rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)),
                                       scale=c.r3((s, s * float(rng.uniform(0.5, 1.0)), 0.02)),
                                       parts=(Part("sphere", Material(color=tint, roughness=0.02, metallic=0.0,
                                                                      transmission=0.6, ior=ior)),)))
    cam = c.orbit_camera((0.0, 0.0, 0.3), radius=0.8 + 0.5 * count, azimuth=u[4] * 2 * math.pi,
                         elevation=float(rng.uniform(0.3, 0.9)), aspect=config.aspect, margin=0.8)
    return Scene(category=config.category, objects=tuple(objects), lights=c.key_lights(rng, strength=1.3), camera=cam,
                 world=c.sky(rng, strength=1.5), background=(c.ground(rng, pattern="checker"),),
                 params={"kind": kind, "tint": list(tint), "ior": ior, "count": count})
