"""Vehicles: cars, vans and trucks built from primitives, parked or on a road.

Strata: vehicle type mix, count, body colour family, camera height, camera azimuth.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Material, Part, Scene, SceneObject

_KINDS = ("car", "van", "truck")
_DIMS = {"car": (4.2, 1.8, 0.7, 0.6), "van": (4.8, 2.0, 1.2, 0.9), "truck": (7.0, 2.4, 1.2, 1.6)}


def _vehicle(rng: np.random.Generator, oid: int, kind: str, x: float, y: float, heading: float,
             hue: float) -> SceneObject:
    length, width, body_h, cab_h = _DIMS[kind]
    paint = Material(color=c.hsv(hue, float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.3, 0.95))),
                     roughness=0.2, metallic=float(rng.choice([0.0, 1.0])))
    glass = Material(color=(0.05, 0.07, 0.1), roughness=0.05, metallic=0.0)
    tyre = Material(color=(0.03, 0.03, 0.03), roughness=0.9)
    wheel_r = 0.35 if kind == "car" else 0.45
    body_z = wheel_r + body_h / 2
    cab_len = length * (0.5 if kind == "car" else 0.3)
    cab_x = 0.0 if kind == "car" else length / 2 - cab_len / 2
    parts = [
        Part("cube", paint, location=(0.0, 0.0, body_z), scale=(length, width, body_h)),
        Part("cube", glass if kind == "car" else paint, location=(cab_x, 0.0, body_z + body_h / 2 + cab_h / 2),
             scale=(cab_len, width * 0.9, cab_h)),
    ]
    for wx in (-length * 0.33, length * 0.33):
        for wy in (-width / 2, width / 2):
            parts.append(Part("cylinder", tyre, location=(wx, wy, wheel_r), rotation=(math.pi / 2, 0.0, 0.0),
                              scale=(2 * wheel_r, 2 * wheel_r, 0.3)))
    return SceneObject(id=oid, cls=kind, parts=tuple(parts), location=c.r3((x, y, 0.0)),
                       rotation=(0.0, 0.0, round(heading, 4)))


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    lead = c.pick(_KINDS, u[0])
    count = 1 + int(u[1] * 4)
    hue = u[2]
    heading = float(rng.choice([0.0, math.pi])) + float(rng.uniform(-0.3, 0.3))
    objects = []
    for i in range(count):
        kind = lead if rng.random() < 0.6 else _KINDS[int(rng.integers(3))]
        lane = float(rng.choice([-1.6, 1.6]))
        x = (i - (count - 1) / 2) * 8.0 + float(rng.uniform(-1.0, 1.0))
        objects.append(_vehicle(rng, i + 1, kind, x, lane, heading if lane > 0 else heading + math.pi,
                                (hue + float(rng.uniform(-0.15, 0.15))) % 1.0))
    road = Part("plane", Material(color=(0.08, 0.08, 0.09), color2=(0.12, 0.12, 0.12), pattern="noise",
                                  pattern_scale=30.0, roughness=0.8), scale=(200.0, 8.0, 1.0))
    cam = c.orbit_camera((0.0, 0.0, 0.8), radius=2.5 + count * 3.5, azimuth=u[4] * 2 * math.pi,
                         elevation=c.lerp(0.08, 1.0, u[3]), aspect=config.aspect, margin=0.85)
    return Scene(category=config.category, objects=tuple(objects), lights=c.key_lights(rng), camera=cam,
                 world=c.sky(rng), background=(c.ground(rng, size=200.0), Part(road.primitive, road.material,
                                                                                location=(0.0, 0.0, 0.005),
                                                                                scale=road.scale)),
                 params={"lead": lead, "count": count, "hue": round(hue, 4)})
