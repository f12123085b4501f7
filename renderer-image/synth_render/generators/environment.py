"""Environment: outdoor settings (trees, rocks, buildings) under a time-of-day sky.

Strata: setting, time of day (which HDRI: low sun at sunrise/sunset, high sun otherwise),
density, camera azimuth, camera height. Trees have trunks and clumps of foliage (or stacked
conifer tiers), rocks are displaced boulders, buildings have windows and pitched or flat roofs.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import Light, Material, Part, Recipe, Scene, SceneObject, World

_SETTINGS = ("forest", "rocky", "town", "park")


def _tree(rng: np.random.Generator, oid: int) -> SceneObject:
    h = float(rng.uniform(2.0, 4.0))
    bark = Material(color=c.hsv(0.07, 0.5, float(rng.uniform(0.15, 0.3))), color2=c.hsv(0.07, 0.4, 0.08),
                    pattern="noise", pattern_scale=25.0, roughness=0.95, bump=0.6)
    leaf_hue = float(rng.uniform(0.2, 0.36))
    leaves = Material(color=c.hsv(leaf_hue, float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.2, 0.45))),
                      color2=c.hsv(leaf_hue + 0.04, 0.7, float(rng.uniform(0.1, 0.25))), pattern="voronoi",
                      pattern_scale=30.0, roughness=0.7, bump=0.8)
    trunk_r = 0.06 * h
    parts = [Part("capsule", bark, location=(0.0, 0.0, round(h * 0.32, 4)), scale=c.r3((trunk_r * 2, trunk_r * 2, h * 0.66)))]
    if rng.random() < 0.35:  # conifer: stacked tiers
        for k in range(3):
            w = h * (0.55 - 0.13 * k)
            parts.append(Part("cone", leaves, location=c.r3((0.0, 0.0, h * (0.35 + 0.2 * k) + w * 0.35)),
                              scale=c.r3((w, w, w * 0.9))))
    else:  # broadleaf: a crown of overlapping foliage clumps
        crown = h * 0.42
        for k in range(5):
            a = 2 * math.pi * k / 5 + float(rng.uniform(-0.3, 0.3))
            off = crown * 0.35 if k else 0.0
            sz = crown * float(rng.uniform(0.7, 1.0))
            parts.append(Part("blob", leaves, location=c.r3((off * math.cos(a), off * math.sin(a),
                                                             h * 0.68 + float(rng.uniform(-0.1, 0.15)) * crown)),
                              rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)), scale=c.r3((sz, sz, sz * 0.85))))
    return SceneObject(id=oid, cls="tree", parts=tuple(parts), rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)))


def _rock(rng: np.random.Generator, oid: int) -> SceneObject:
    sz = float(rng.uniform(0.4, 1.3))
    m = Material(color=c.hsv(float(rng.uniform(0.05, 0.12)), float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.3, 0.55))),
                 color2=c.hsv(0.1, 0.1, float(rng.uniform(0.15, 0.3))), pattern="voronoi", pattern_scale=6.0,
                 roughness=0.9, bump=0.7)
    shape: Recipe = ("rock_a", "rock_b", "rock_c")[int(rng.integers(3))]
    return SceneObject(id=oid, cls="rock", parts=(Part(shape, m, location=(0.0, 0.0, 0.5)),),
                       rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)),
                       scale=c.r3((sz, sz * float(rng.uniform(0.7, 1.0)), sz * float(rng.uniform(0.5, 0.8)))))


def _building(rng: np.random.Generator, oid: int) -> SceneObject:
    w, d = float(rng.uniform(4.0, 8.0)), float(rng.uniform(4.0, 7.0))
    floors = int(rng.integers(1, 5))
    h = 3.0 * floors + 0.4
    wall = Material(color=c.color(rng, sat=(0.05, 0.35), val=(0.45, 0.85)),
                    color2=c.hsv(0.58, 0.3, float(rng.uniform(0.05, 0.2))), pattern="windows", roughness=0.8)
    roof_m = Material(color=c.hsv(float(rng.choice([0.02, 0.05, 0.6])), float(rng.uniform(0.3, 0.6)),
                                  float(rng.uniform(0.15, 0.4))), roughness=0.7)
    door = Material(color=c.hsv(float(rng.uniform(0.0, 1.0)), 0.5, 0.25), roughness=0.5)
    parts = [Part("slab", wall, location=(0.0, 0.0, round(h / 2, 4)), scale=c.r3((w, d, h))),
             Part("slab", door, location=c.r3((w / 2 + 0.02, 0.0, 1.05)), scale=(0.06, 1.1, 2.1))]
    if floors <= 2 and rng.random() < 0.7:
        parts.append(Part("car_cabin", roof_m, location=c.r3((0.0, 0.0, h + 0.9)), rotation=(0.0, 0.0, 0.0),
                          scale=c.r3((w + 0.4, d + 0.4, 1.8))))
    else:
        parts.append(Part("slab", roof_m, location=c.r3((0.0, 0.0, h + 0.1)), scale=c.r3((w + 0.2, d + 0.2, 0.2))))
    return SceneObject(id=oid, cls="building", parts=tuple(parts),
                       rotation=(0.0, 0.0, round(float(rng.uniform(0, 2 * math.pi)), 4)))


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    setting = c.pick(_SETTINGS, u[0])
    sun_elev = c.lerp(0.08, 1.3, u[1])
    count = 4 + int(u[2] * 8)
    makers = {"forest": (_tree, _tree, _rock), "rocky": (_rock, _rock, _tree), "town": (_building, _building, _tree),
              "park": (_tree, _rock, _building)}[setting]
    spread = (5.0 if setting in ("town", "park") else 2.5) + count * 0.6
    bd = s.backdrop(config, rng, "ground", extent=spread, facing=u[3] * 2 * math.pi,
                    floor="plinth" if setting == "town" else "grass", ground_size=400.0)
    made = [makers[int(rng.integers(3))](rng, i + 1) for i in range(count)]
    made.sort(key=lambda o: -float(o.scale[0]) if o.cls != "building" else -100.0)  # big things first: they need room
    cam = c.orbit_camera((0.0, 0.0, 1.2), radius=spread * 0.8, azimuth=u[3] * 2 * math.pi,
                         elevation=c.lerp(0.05, 0.6, u[4]), aspect=config.aspect, margin=0.9, focal_mm=28.0)
    # Keep the ground near the camera clear: nothing stands in front of the lens or behind it.
    reach = 0.45 * math.hypot(cam.location[0], cam.location[1])
    bd.layout.obstacles.append((np.array([cam.location[0] - reach, cam.location[1] - reach, -1.0]),
                                np.array([cam.location[0] + reach, cam.location[1] + reach, 1e3])))
    objects = s.place_subjects(bd.layout, rng, made, radius=spread)
    objects = s.add_clutter(rng, bd.layout, objects, share=0.15, size=0.5, radius=spread)
    low = sun_elev < 0.5
    world = s.world(config, rng, prefer=("sunrise", "sunset") if low else ("forest", "courtyard", "city"),
                    visible=True, strength=(0.8, 1.2))
    lights: tuple[Light, ...] = s.lights(rng, world)
    if world.environment is None:  # no HDRI: the time-of-day sun and sky of the flat-colour fallback
        warm = 1.0 - min(sun_elev / 0.6, 1.0)
        lights = (Light("sun", (0.0, 0.0, 10.0), rotation=(round(math.pi / 2 - sun_elev, 4), 0.0,
                                                           round(float(rng.uniform(0, 6.28)), 4)),
                        energy=round(c.lerp(1.5, 4.5, min(sun_elev, 1.0)), 3), color=c.hsv(0.08, 0.6 * warm, 1.0),
                        size=0.02),)
        world = World(color=c.hsv(0.58 - 0.05 * warm, 0.5 - 0.2 * warm, 0.9),
                      strength=round(c.lerp(0.3, 1.0, sun_elev / 1.3), 3))
    return Scene(category=config.category, objects=tuple(objects), lights=lights, camera=cam, world=world,
                 background=bd.parts,
                 params={"setting": setting, "sun_elevation": round(sun_elev, 4), "count": count})
