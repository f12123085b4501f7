"""Environment: outdoor settings (trees, rocks, buildings) under a time-of-day sky.

Strata: setting, time of day (sun elevation and colour), density, camera azimuth, camera height.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators.base import GenConfig
from synth_render.scene import Light, Material, Part, Scene, SceneObject, World

_SETTINGS = ("forest", "rocky", "town", "park")


def _tree(rng: np.random.Generator, oid: int, x: float, y: float) -> SceneObject:
    h = float(rng.uniform(1.5, 3.0))
    bark = Material(color=c.hsv(0.08, 0.6, 0.3), color2=c.hsv(0.07, 0.5, 0.2), pattern="noise", roughness=0.9)
    leaves = c.material(rng, hue=float(rng.uniform(0.22, 0.38)), pattern="voronoi", metallic=0.0, roughness=0.8)
    crown = c.choose(rng, ("cone", "ico"))
    return SceneObject(id=oid, cls="tree", location=c.r3((x, y, 0.0)), parts=(
        Part("cylinder", bark, location=(0.0, 0.0, h * 0.25), scale=(0.2, 0.2, h * 0.5)),
        Part(crown, leaves, location=(0.0, 0.0, h * 0.7), scale=(h * 0.5, h * 0.5, h * 0.7)),
    ))


def _rock(rng: np.random.Generator, oid: int, x: float, y: float) -> SceneObject:
    s = float(rng.uniform(0.4, 1.1))
    m = c.material(rng, pattern="noise", metallic=0.0, roughness=0.9)
    m = Material(**{**m.__dict__, "color": c.hsv(0.08, 0.1, float(rng.uniform(0.3, 0.6))), "bump": 0.5})
    return SceneObject(id=oid, cls="rock", location=c.r3((x, y, s * 0.3)),
                       rotation=c.r3(tuple(rng.uniform(0, 3.14, 3))), scale=c.r3((s, s * 0.8, s * 0.6)),
                       parts=(Part("ico", m),))


def _building(rng: np.random.Generator, oid: int, x: float, y: float) -> SceneObject:
    w, d, h = float(rng.uniform(1.0, 2.0)), float(rng.uniform(1.0, 2.0)), float(rng.uniform(1.5, 4.0))
    wall = c.material(rng, pattern="checker", metallic=0.0, roughness=0.8)
    roof = c.material(rng, pattern="plain", metallic=0.0)
    return SceneObject(id=oid, cls="building", location=c.r3((x, y, 0.0)),
                       rotation=(0.0, 0.0, round(float(rng.choice([0.0, 1.5708])), 4)), parts=(
        Part("cube", wall, location=(0.0, 0.0, h / 2), scale=c.r3((w, d, h))),
        Part("cone", roof, location=(0.0, 0.0, h + 0.4), scale=c.r3((w * 1.3, d * 1.3, 0.8))),
    ))


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    setting = c.pick(_SETTINGS, u[0])
    sun_elev = c.lerp(0.08, 1.3, u[1])
    count = 4 + int(u[2] * 8)
    makers = {"forest": (_tree, _tree, _rock), "rocky": (_rock, _rock, _tree), "town": (_building, _building, _tree),
              "park": (_tree, _rock, _building)}[setting]
    spacing = 2.4 if setting == "town" else 1.5
    objects = [makers[int(rng.integers(3))](rng, i + 1, x, y)
               for i, (x, y) in enumerate(c.scatter(rng, count, 2.0 + count * 0.45, spacing))]
    warm = 1.0 - min(sun_elev / 0.6, 1.0)
    sun = Light("sun", (0.0, 0.0, 10.0), rotation=(round(math.pi / 2 - sun_elev, 4), 0.0,
                                                   round(float(rng.uniform(0, 6.28)), 4)),
                energy=round(c.lerp(1.5, 4.5, min(sun_elev, 1.0)), 3), color=c.hsv(0.08, 0.6 * warm, 1.0), size=0.02)
    world = World(color=c.hsv(0.58 - 0.5 * warm * 0.1, 0.5 - 0.2 * warm, 0.9), strength=round(c.lerp(0.3, 1.0, sun_elev / 1.3), 3))
    grass = c.ground(rng, pattern="noise", size=80.0)
    grass = Part("plane", Material(**{**grass.material.__dict__,
                                      "color": c.hsv(float(rng.uniform(0.2, 0.33)), 0.5, 0.35)}), scale=grass.scale)
    cam = c.orbit_camera((0.0, 0.0, 1.0), radius=2.0 + count * 0.45, azimuth=u[3] * 2 * math.pi,
                         elevation=c.lerp(0.1, 0.7, u[4]), aspect=config.aspect, margin=0.9, focal_mm=28.0)
    return Scene(category=config.category, objects=tuple(objects), lights=(sun,), camera=cam, world=world,
                 background=(grass,),
                 params={"setting": setting, "sun_elevation": round(sun_elev, 4), "count": count})
