"""Effects: fog, glowing emitters, shallow depth of field and motion blur over simple scenes.

Strata: effect, strength, object count, camera azimuth, elevation.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Material, Part, Scene, SceneObject, World

_EFFECTS = ("fog", "glow", "bokeh", "blur")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    effect = c.pick(_EFFECTS, u[0])
    strength = u[1]
    count = 3 + int(u[2] * 5)
    objects: list[SceneObject] = []
    for i, (x, y) in enumerate(c.scatter(rng, count, 2.6, 1.1)):
        shape = c.choose(rng, ("sphere", "cube", "ico", "cylinder", "torus"))
        size = float(rng.uniform(0.5, 1.1))
        mat = c.material(rng)
        if effect == "glow" and rng.random() < 0.6:
            mat = Material(color=c.color(rng, sat=(0.6, 1.0), val=(0.9, 1.0)), emission=round(c.lerp(2, 12, strength), 3))
        vel = (0.0, 0.0, 0.0)
        if effect == "blur" and rng.random() < 0.7:
            a = float(rng.uniform(0, 6.28))
            sp = c.lerp(0.1, 0.6, strength)
            vel = (round(sp * math.cos(a), 4), round(sp * math.sin(a), 4), 0.0)
        objects.append(SceneObject(id=i + 1, cls=shape, parts=(Part(shape, mat),),
                                   location=c.r3((x, y, c.HALF_HEIGHT[shape] * size)),
                                   rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)),
                                   scale=(size, size, size), velocity=vel))
    world = c.sky(rng)
    if effect == "fog":
        world = World(color=world.color, strength=world.strength, fog_density=round(c.lerp(0.02, 0.15, strength), 4),
                      fog_color=c.hsv(0.6, 0.1, 0.9))
    if effect == "glow":
        world = World(color=(0.02, 0.02, 0.04), strength=0.3)
    fstop = round(c.lerp(0.8, 2.8, 1 - strength), 3) if effect == "bokeh" else 0.0
    cam = c.orbit_camera((0.0, 0.0, 0.4), radius=3.0, azimuth=u[3] * 2 * math.pi, elevation=c.lerp(0.15, 0.8, u[4]),
                         aspect=config.aspect, margin=0.8, focal_mm=50.0 if effect == "bokeh" else 35.0, fstop=fstop)
    lights = c.key_lights(rng, strength=0.3 if effect == "glow" else 1.0)
    return Scene(category=config.category, objects=tuple(objects), lights=lights, camera=cam, world=world,
                 background=(c.ground(rng),), params={"effect": effect, "strength": round(strength, 4), "count": count})
