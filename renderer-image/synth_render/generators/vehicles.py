"""Vehicles: cars, vans and trucks with bevelled bodies, glass, lights and tyred wheels on a road.

Strata: vehicle type mix, count, body colour family, camera height, camera azimuth. Bodies are
extruded and bevelled side profiles; wheels are tyres (rounded rings) around metal rims.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.placement import Surface
from synth_render.scene import Material, Part, Scene, SceneObject

_KINDS = ("car", "van", "truck")
_DIMS = {"car": (4.3, 1.8, 1.45), "van": (4.9, 2.0, 2.1), "truck": (7.2, 2.4, 3.0)}
"""Length, width, height (metres)."""

_GLASS = Material(color=(0.02, 0.025, 0.03), roughness=0.03, metallic=0.0, transmission=0.0, ior=1.5)
_TYRE = Material(color=(0.025, 0.025, 0.025), roughness=0.85, bump=0.2, pattern="noise", pattern_scale=40.0,
                 color2=(0.04, 0.04, 0.04))
_TRIM = Material(color=(0.03, 0.03, 0.03), roughness=0.5)


def _wheels(x_positions: tuple[float, ...], width: float, r: float, rim: Material) -> list[Part]:
    parts = []
    tw = 0.26 if r < 0.4 else 0.34
    for wx in x_positions:
        for side in (-1.0, 1.0):
            y = side * (width / 2 - tw / 2 + 0.02)
            rot = (math.pi / 2, 0.0, 0.0)
            parts.append(Part("tyre", _TYRE, location=c.r3((wx, y, r)), rotation=rot, scale=c.r3((2 * r, 2 * r, tw / 0.4))))
            parts.append(Part("rim", rim, location=c.r3((wx, y + side * 0.01, r)), rotation=(side * -math.pi / 2, 0.0, 0.0),
                              scale=c.r3((1.32 * r, 1.32 * r, tw * 0.8))))
    return parts


def _lights(length: float, width: float, z: float) -> list[Part]:
    head = Material(color=(1.0, 0.97, 0.9), roughness=0.1, emission=3.0)
    tail = Material(color=(0.8, 0.02, 0.02), roughness=0.2, emission=1.5)
    parts = []
    for side in (-1.0, 1.0):
        parts.append(Part("slab", head, location=c.r3((length / 2 - 0.02, side * width * 0.33, z)),
                          scale=c.r3((0.06, width * 0.18, 0.1))))
        parts.append(Part("slab", tail, location=c.r3((-length / 2 + 0.02, side * width * 0.36, z)),
                          scale=c.r3((0.06, width * 0.14, 0.1))))
    return parts


def _vehicle(rng: np.random.Generator, oid: int, kind: str, heading: float, hue: float) -> SceneObject:
    length, width, height = _DIMS[kind]
    length *= float(rng.uniform(0.92, 1.08))
    paint = Material(color=c.hsv(hue, float(rng.uniform(0.3, 0.95)), float(rng.uniform(0.15, 0.9))),
                     roughness=round(float(rng.uniform(0.1, 0.3)), 3), metallic=float(rng.choice([0.0, 1.0])))
    rim = Material(color=(0.75, 0.75, 0.78), roughness=0.2, metallic=1.0) if rng.random() < 0.7 else _TRIM
    r = 0.33 if kind == "car" else (0.38 if kind == "van" else 0.5)
    parts: list[Part] = []
    if kind == "car":
        body_h = 0.62
        z0 = r * 0.55
        parts.append(Part("car_body", paint, location=c.r3((0.0, 0.0, z0 + body_h / 2)),
                          scale=c.r3((length, width, body_h))))
        cab_h = height - z0 - body_h
        parts.append(Part("car_cabin", _GLASS, location=c.r3((-0.05 * length, 0.0, z0 + body_h + cab_h / 2 - 0.02)),
                          scale=c.r3((length * 0.5, width * 0.86, cab_h))))
        parts.append(Part("slab", paint, location=c.r3((-0.1 * length, 0.0, z0 + body_h + cab_h - 0.02)),
                          scale=c.r3((length * 0.27, width * 0.8, 0.04))))
        parts += _wheels((-length * 0.32, length * 0.31), width, r, rim)
        parts += _lights(length, width, z0 + body_h * 0.7)
        parts.append(Part("slab", _TRIM, location=c.r3((length / 2 - 0.03, 0.0, z0 + 0.12)),
                          scale=c.r3((0.08, width * 0.98, 0.16))))
    elif kind == "van":
        z0 = r * 0.6
        body_h = height - z0
        parts.append(Part("rounded_cube", paint, location=c.r3((-0.04 * length, 0.0, z0 + body_h / 2)),
                          scale=c.r3((length * 0.92, width, body_h))))
        parts.append(Part("car_body", paint, location=c.r3((0.42 * length, 0.0, z0 + body_h * 0.27)),
                          scale=c.r3((length * 0.2, width * 0.98, body_h * 0.54))))
        parts.append(Part("slab", _GLASS, location=c.r3((0.42 * length - 0.02, 0.0, z0 + body_h * 0.72)),
                          rotation=(0.0, -0.25, 0.0), scale=c.r3((0.05, width * 0.9, body_h * 0.38))))
        for side in (-1.0, 1.0):
            parts.append(Part("slab", _GLASS, location=c.r3((0.3 * length, side * width / 2, z0 + body_h * 0.72)),
                              scale=c.r3((length * 0.12, 0.03, body_h * 0.3))))
        parts += _wheels((-length * 0.33, length * 0.3), width, r, rim)
        parts += _lights(length, width, z0 + body_h * 0.3)
    else:
        z0 = r * 0.7
        cab_len = 2.0
        cargo = Material(color=c.color(rng, sat=(0.0, 0.2), val=(0.6, 0.95)), roughness=0.5)
        parts.append(Part("rounded_cube", paint, location=c.r3((length / 2 - cab_len / 2, 0.0, z0 + 1.1)),
                          scale=c.r3((cab_len, width, 2.2))))
        parts.append(Part("slab", _GLASS, location=c.r3((length / 2 + 0.005, 0.0, z0 + 1.55)),
                          scale=c.r3((0.03, width * 0.85, 0.8))))
        parts.append(Part("rounded_cube", cargo, location=c.r3((-cab_len / 2 + 0.05, 0.0, z0 + 0.2 + (height - z0) / 2)),
                          scale=c.r3((length - cab_len - 0.1, width, height - z0))))
        parts.append(Part("slab", _TRIM, location=c.r3((0.0, 0.0, z0 + 0.1)), scale=c.r3((length * 0.98, width * 0.7, 0.2))))
        parts += _wheels((-length * 0.38, -length * 0.22, length * 0.34), width, r, rim)
        parts += _lights(length, width, z0 + 0.5)
    return SceneObject(id=oid, cls=kind, parts=tuple(parts), rotation=(0.0, 0.0, round(heading, 4)))


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    lead = c.pick(_KINDS, u[0])
    count = 1 + int(u[1] * 4)
    hue = u[2]
    heading = float(rng.choice([0.0, math.pi])) + float(rng.uniform(-0.05, 0.05))
    bd = s.backdrop(config, rng, "ground", extent=count * 4.0, facing=u[4] * 2 * math.pi,
                    floor="grass" if rng.random() < 0.5 else "plinth",
                    ground_size=300.0)
    road_m = s.surface_material(config, rng, "road")
    road_w = 8.0
    paint = Material(color=(0.9, 0.9, 0.85), roughness=0.6)
    background = [*bd.parts, Part("plane", road_m, location=(0.0, 0.0, 0.004), scale=(300.0, road_w, 1.0))]
    for k in range(-12, 13):
        background.append(Part("plane", paint, location=(k * 6.0, 0.0, 0.008), scale=(3.0, 0.15, 1.0)))
    for side in (-1.0, 1.0):
        background.append(Part("plane", paint, location=(0.0, side * (road_w / 2 - 0.25), 0.008),
                               scale=(300.0, 0.12, 1.0)))
    road = Surface(0.0, -150.0, -road_w / 2, 150.0, road_w / 2)
    objects: list[SceneObject] = []
    for i in range(count):
        kind = lead if rng.random() < 0.6 else _KINDS[int(rng.integers(3))]
        lane = float(rng.choice([-1.0, 1.0])) * road_w / 4
        v = _vehicle(rng, i + 1, kind, heading if lane > 0 else heading + math.pi,
                     (hue + float(rng.uniform(-0.15, 0.15))) % 1.0)
        x0 = (i - (count - 1) / 2) * 8.0 + float(rng.uniform(-1.0, 1.0))
        for dx in (0.0, 3.0, -3.0, 6.0, -6.0, 9.0):
            placed = bd.layout.drop(v, x0 + dx, lane, on=road)
            if placed is not None:
                objects.append(placed)
                break
    if not objects:
        objects.append(bd.layout.drop(_vehicle(rng, 1, lead, heading, hue), 0.0, road_w / 4, on=road)
                       or _vehicle(rng, 1, lead, heading, hue))
    objects = [replace(o, id=i + 1) for i, o in enumerate(objects)]
    objects = s.add_clutter(rng, bd.layout, objects, share=0.0 if rng.random() < 0.5 else 0.4, size=0.6,
                            radius=count * 4.0 + 4.0)
    world = s.world(config, rng, prefer=("city", "courtyard", "sunset", "sunrise", "forest"), visible=True)
    cam = c.orbit_camera((0.0, 0.0, 0.8), radius=2.0 + count * 2.6, azimuth=u[4] * 2 * math.pi,
                         elevation=c.lerp(0.08, 1.0, u[3]), aspect=config.aspect, margin=0.85)
    return Scene(category=config.category, objects=tuple(objects), lights=s.lights(rng, world), camera=cam,
                 world=world, background=tuple(background),
                 params={"lead": lead, "count": count, "hue": round(hue, 4)})
