"""Lighting: the same kind of tabletop scene under varied light type, count, power and colour.

Strata: light type, light count, intensity (log scale), colour temperature, ambient level.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Light, Scene, World

_KINDS = ("sun", "point", "area", "spot")


def _kelvin_rgb(kelvin: float) -> tuple[float, float, float]:
    """Approximate blackbody colour (Tanner Helland's fit), normalised to max 1."""
    t = kelvin / 100
    r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    g = 99.47 * math.log(t) - 161.1 if t <= 66 else 288.1 * (t - 60) ** -0.0755
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5 * math.log(t - 10) - 305.0)
    rgb = [min(max(x, 1.0), 255.0) / 255 for x in (r, g, b)]
    m = max(rgb)
    return (round(rgb[0] / m, 4), round(rgb[1] / m, 4), round(rgb[2] / m, 4))


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    kind = c.pick(_KINDS, u[0])
    count = 1 + int(u[1] * 4)
    gain = 2 ** c.lerp(-1.5, 1.5, u[2])
    kelvin = c.lerp(2200, 9000, u[3])
    objects = [c.prop(rng, i + 1, c.choose(rng, ("sphere", "cube", "cone", "torus", "cylinder")), p,
                      float(rng.uniform(0.7, 1.2)))
               for i, p in enumerate(c.scatter(rng, 3 + int(rng.integers(3)), 2.0, 1.2))]
    lights = []
    for k in range(count):
        az = 2 * math.pi * (k / count + float(rng.uniform(0, 0.2)))
        loc = c.r3((5 * math.cos(az), 5 * math.sin(az), float(rng.uniform(2.5, 6))))
        base = {"sun": 4.0, "point": 1200.0, "area": 900.0, "spot": 2500.0}[kind] / count
        light = Light(kind, loc, energy=round(base * gain, 3), color=_kelvin_rgb(kelvin + float(rng.uniform(-500, 500))),
                      size=round(float(rng.uniform(0.05, 2.0)), 3))
        lights.append(c.aim(light, (0.0, 0.0, 0.3)))
    ambient = round(c.lerp(0.02, 0.4, u[4]), 4)
    cam = c.orbit_camera((0.0, 0.0, 0.4), radius=3.0, azimuth=float(rng.uniform(0, 2 * math.pi)),
                         elevation=float(rng.uniform(0.3, 0.8)), aspect=config.aspect, margin=0.8)
    return Scene(category=config.category, objects=tuple(objects), lights=tuple(lights), camera=cam,
                 world=World(color=(0.3, 0.35, 0.45), strength=ambient), background=(c.ground(rng),),
                 params={"kind": kind, "count": count, "gain": round(gain, 4), "kelvin": round(kelvin, 1),
                         "ambient": ambient})
