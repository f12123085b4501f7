"""Fluids: liquids in real glassware, droplets and puddles: refraction and glossy reflections.

Strata: scene kind, liquid tint, index of refraction, count, camera azimuth. Glasses are hollow
lathed glass (walls with thickness) holding a liquid column; bottles are glass with liquid;
droplets are domes of liquid on a table; puddles are thin liquid films on the floor.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from synth_render import simulation
from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import Material, Part, Scene, SceneObject, Simulation

_KINDS = ("glasses", "droplets", "puddles", "pour", "fill", "splash")
_SIMULATED = ("pour", "fill", "splash")
_WATER = Material(color=(0.92, 0.96, 1.0), roughness=0.02, transmission=1.0, ior=1.333)
_GLASS = Material(color=(0.97, 0.98, 0.98), roughness=0.0, transmission=1.0, ior=1.5)


def _glass(rng: np.random.Generator, oid: int, liquid: Material) -> SceneObject:
    h = float(rng.uniform(0.09, 0.16))
    r = float(rng.uniform(0.035, 0.05))
    fill = float(rng.uniform(0.35, 0.85))
    inner_bottom = 0.1 * h  # the cup recipe: floor 10% of the height, walls 5% of the radius
    depth = (h - inner_bottom) * fill
    parts = [Part("cup", _GLASS, location=(0.0, 0.0, round(h / 2, 4)), scale=c.r3((2 * r, 2 * r, h))),
             Part("cylinder", liquid, location=c.r3((0.0, 0.0, inner_bottom + depth / 2)),
                  scale=c.r3((2 * r * 0.895, 2 * r * 0.895, depth)))]
    if rng.random() < 0.3:  # a stemmed glass: the cup on a stem and foot
        stem = float(rng.uniform(0.05, 0.08))
        parts = [Part("cylinder", _GLASS, location=(0.0, 0.0, 0.003), scale=c.r3((2 * r * 0.9, 2 * r * 0.9, 0.006))),
                 Part("cylinder", _GLASS, location=c.r3((0.0, 0.0, stem / 2)), scale=(0.008, 0.008, round(stem, 4))),
                 *(Part(p.primitive, p.material, location=c.r3((0.0, 0.0, p.location[2] + stem)), scale=p.scale)
                   for p in parts)]
    return SceneObject(id=oid, cls="glass", parts=tuple(parts))


def _bottle(rng: np.random.Generator, oid: int, liquid: Material) -> SceneObject:
    h = float(rng.uniform(0.22, 0.3))
    r = float(rng.uniform(0.03, 0.045))
    tinted = Material(color=c.hsv(float(rng.choice([0.3, 0.1, 0.55])), float(rng.uniform(0.0, 0.6)), 0.9),
                      roughness=0.0, transmission=1.0, ior=1.5)
    fill = float(rng.uniform(0.2, 0.45))
    return SceneObject(id=oid, cls="glass", parts=(
        Part("bottle", tinted, location=c.r3((0.0, 0.0, h / 2)), scale=c.r3((2 * r, 2 * r, h))),
        Part("cylinder", liquid, location=c.r3((0.0, 0.0, 0.01 + h * fill / 2)),
             scale=c.r3((2 * r * 0.9, 2 * r * 0.9, h * fill))),
    ))


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    kind = c.pick(_KINDS, u[0])
    tint = c.hsv(u[1], c.lerp(0.0, 0.8, u[1]), 1.0)
    ior = round(c.lerp(1.30, 1.50, u[2]), 4)
    count = 2 + int(u[3] * 5)
    azimuth = u[4] * 2 * math.pi
    liquid = Material(color=tint, roughness=0.02, transmission=1.0, ior=ior)
    objects: list[SceneObject] = []
    if kind in _SIMULATED:
        return _simulated(config, rng, kind, azimuth, Material(color=c.hsv(u[1], c.lerp(0.0, 0.3, u[1]), 1.0),
                                                              roughness=0.02, transmission=1.0, ior=ior))
    if kind == "puddles":
        spread = 0.8 + 0.5 * count
        bd = s.backdrop(config, rng, "ground", extent=spread, facing=azimuth)
        # A clear liquid film: the floor shows through it, the sky reflects off it.
        film = Material(color=c.hsv(u[1], c.lerp(0.0, 0.4, u[1]), 1.0), roughness=0.01, transmission=1.0, ior=ior)
        for i in range(count):
            sz = float(rng.uniform(0.8, 1.6))
            objects.append(SceneObject(id=i + 1, cls="puddle", rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)),
                                       scale=c.r3((sz, sz * float(rng.uniform(0.5, 1.0)), 0.008)),
                                       parts=(Part("dome", film),)))
        objects = s.place_subjects(bd.layout, rng, objects, radius=spread)
        target, radius, elev = (0.0, 0.0, 0.2), spread, float(rng.uniform(0.3, 0.9))
    else:
        spread = 0.12 + 0.05 * count
        bd = s.backdrop(config, rng, "table", extent=spread, facing=azimuth)
        for i in range(count):
            if kind == "glasses":
                objects.append(_glass(rng, i + 1, liquid) if rng.random() < 0.75 else _bottle(rng, i + 1, liquid))
            else:
                sz = float(rng.uniform(0.05, 0.1))
                objects.append(SceneObject(id=i + 1, cls="droplet", scale=c.r3((sz, sz * float(rng.uniform(0.8, 1.0)),
                                                                                sz * 0.9)),
                                           parts=(Part("dome", liquid),)))
        objects = s.place_subjects(bd.layout, rng, objects, radius=spread, on=bd.top)
        objects = s.add_clutter(rng, bd.layout, objects, share=0.3, size=0.08, radius=spread + 0.1, on=bd.top)
        target, radius, elev = (0.0, 0.0, bd.center[2] + 0.05), spread + 0.1, float(rng.uniform(0.25, 0.8))
    world = s.world(config, rng, prefer=(*s.INDOOR, "courtyard"), visible=True, strength=(0.9, 1.4))
    cam = c.orbit_camera(target, radius=radius, azimuth=azimuth, elevation=elev, aspect=config.aspect, margin=0.9)
    return Scene(category=config.category, objects=tuple(objects), lights=s.lights(rng, world, strength=1.3),
                 camera=cam, world=world, background=bd.parts,
                 params={"kind": kind, "tint": list(tint), "ior": ior, "count": count})


def _simulated(config: GenConfig, rng: np.random.Generator, kind: str, azimuth: float, water: Material) -> Scene:
    """A simulated liquid (``synth_render.simulation``): poured or filled into an empty glass, or splashed."""
    bd = s.backdrop(config, rng, "table", extent=0.25, facing=azimuth)
    h = float(rng.uniform(0.1, 0.15))
    r = float(rng.uniform(0.04, 0.055))
    objects: list[SceneObject] = []
    if kind != "splash":
        objects = s.place_subjects(bd.layout, rng, [SceneObject(id=1, cls="glass", parts=(
            Part("cup", _GLASS, location=(0.0, 0.0, round(h / 2, 4)), scale=c.r3((2 * r, 2 * r, h))),))],
            radius=0.05, on=bd.top)
        objects = s.add_clutter(rng, bd.layout, objects, share=1.0, size=0.07, radius=0.3, on=bd.top)
    top = bd.center[2]
    gx, gy = (objects[0].location[0], objects[0].location[1]) if objects else (0.0, 0.0)
    r_in = 0.9 * r
    fill = float(rng.uniform(0.3, 0.6))
    if kind == "splash":
        volume = float(rng.uniform(1.5e-4, 3.5e-4))
        container, size = None, (0.4, 0.4, 0.3)
    else:
        volume = math.pi * r_in**2 * (0.9 * h) * fill
        container = (*c.r3((gx, gy, r_in)), round(top + 0.1 * h, 4), round(top + h, 4))
        size = (round(6 * r, 4), round(6 * r, 4), round(h * 1.6, 4))
    sim = Simulation(kind="liquid", scenario=kind, seed=int(rng.integers(2**31)), tier=0,
                     origin=c.r3((gx, gy, top)), size=size, container=container, ground=round(top, 4),
                     volume=round(volume, 8), angle=round(float(rng.uniform(0, 2 * math.pi)), 4),
                     material=water if rng.random() < 0.5 else _WATER)
    liquid = SceneObject(id=len(objects) + 1, cls="liquid", parts=(), simulation=sim)
    world = s.world(config, rng, prefer=(*s.INDOOR, "courtyard"), visible=True, strength=(0.9, 1.4))
    target = (gx, gy, top + (0.6 * h if kind != "splash" else 0.03))
    elev = float(rng.uniform(0.3, 0.7) if kind == "splash" else rng.uniform(0.8, 1.1))  # see into the glass
    cam = c.orbit_camera(target, radius=0.22, azimuth=azimuth, elevation=elev,
                         aspect=config.aspect, margin=0.9)
    scene = Scene(category=config.category, objects=(*objects, liquid), lights=s.lights(rng, world, strength=1.3),
                  camera=cam, world=world, background=bd.parts,
                  params={"kind": kind, "tint": list(sim.material.color), "ior": sim.material.ior, "count": 1})
    tier = simulation.tier_of(scene.complexity)
    liquid = replace(liquid, simulation=replace(sim, tier=tier))
    return replace(scene, objects=(*objects, liquid), params={**scene.params, "simulationTier": tier})
