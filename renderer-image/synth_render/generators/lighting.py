"""Lighting: the same kind of tabletop scene under varied light type, count, power and colour.

Strata: light type, light count, intensity (log scale), colour temperature, ambient level. The
ambient is a dim, hidden HDRI (when the spec offers environments) so the lamps dominate.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import Light, Part, Scene, SceneObject, Shape, World

_KINDS = ("sun", "point", "area", "spot")
_SHAPES: tuple[Shape, ...] = ("sphere", "rounded_cube", "cone", "torus", "cylinder", "capsule")


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
    azimuth = float(rng.uniform(0, 2 * math.pi))
    subjects = []
    for i in range(3 + int(rng.integers(3))):
        shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
        sz = float(rng.uniform(0.7, 1.2))
        subjects.append(SceneObject(id=i + 1, cls=c.label(shape), parts=(Part(shape, c.material(rng),
                                                                    location=(0.0, 0.0, 0.15 if shape == "torus" else 0.5)),),
                                    rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)), scale=(sz, sz, sz)))
    bd = s.backdrop(config, rng, "wall" if rng.random() < 0.6 else "ground", extent=2.4, facing=azimuth)
    objects = s.place_subjects(bd.layout, rng, subjects, radius=2.0)
    lights = []
    for k in range(count):
        az = 2 * math.pi * (k / count + float(rng.uniform(0, 0.2)))
        loc = c.r3((5 * math.cos(az), 5 * math.sin(az), float(rng.uniform(2.5, 6))))
        base = {"sun": 4.0, "point": 1200.0, "area": 900.0, "spot": 2500.0}[kind] / count
        light = Light(kind, loc, energy=round(base * gain, 3), color=_kelvin_rgb(kelvin + float(rng.uniform(-500, 500))),
                      size=round(float(rng.uniform(0.05, 2.0)), 3))
        lights.append(c.aim(light, (0.0, 0.0, 0.3)))
    ambient = round(c.lerp(0.02, 0.4, u[4]), 4)
    env = s.environment(config, rng, prefer=s.INDOOR, visible=False, strength=(ambient, ambient))
    world = World(color=(0.3, 0.35, 0.45), strength=ambient, environment=env)
    cam = c.orbit_camera((0.0, 0.0, 0.4), radius=3.0, azimuth=azimuth,
                         elevation=float(rng.uniform(0.3, 0.8)), aspect=config.aspect, margin=0.8)
    return Scene(category=config.category, objects=tuple(objects), lights=tuple(lights), camera=cam,
                 world=world, background=bd.parts,
                 params={"kind": kind, "count": count, "gain": round(gain, 4), "kelvin": round(kelvin, 1),
                         "ambient": ambient})
