"""Effects: fog, glowing emitters, shallow depth of field and motion blur over simple scenes.

Strata: effect, strength, object count, camera azimuth, elevation.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from synth_render import simulation
from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import Material, Part, Scene, SceneObject, Shape, Simulation, World

_EFFECTS = ("fog", "glow", "bokeh", "blur", "smoke", "fire")
_SHAPES: tuple[Shape, ...] = ("sphere", "cube", "ico", "cylinder", "torus", "rounded_cube", "capsule")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    effect = c.pick(_EFFECTS, u[0])
    strength = u[1]
    count = 3 + int(u[2] * 5)
    azimuth = u[3] * 2 * math.pi
    subjects: list[SceneObject] = []
    for i in range(count):
        shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
        size = float(rng.uniform(0.5, 1.1))
        mat = c.material(rng)
        if effect == "glow" and rng.random() < 0.6:
            mat = Material(color=c.color(rng, sat=(0.6, 1.0), val=(0.9, 1.0)), emission=round(c.lerp(2, 12, strength), 3))
        vel = (0.0, 0.0, 0.0)
        if effect == "blur" and rng.random() < 0.7:
            a = float(rng.uniform(0, 6.28))
            sp = c.lerp(0.1, 0.6, strength)
            vel = (round(sp * math.cos(a), 4), round(sp * math.sin(a), 4), 0.0)
        subjects.append(SceneObject(id=i + 1, cls=c.label(shape), parts=(Part(shape, mat),),
                                    rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)),
                                    scale=(size, size, size), velocity=vel))
    bd = s.backdrop(config, rng, "ground", extent=3.0, facing=azimuth)
    objects = s.place_subjects(bd.layout, rng, subjects, radius=2.6)  # velocities travel with the objects
    if effect == "glow":
        env = s.environment(config, rng, prefer=("night",), visible=True, strength=(0.3, 0.6))
        world = World(color=(0.02, 0.02, 0.04), strength=0.3, environment=env)
    elif effect == "fog":  # an HDRI at infinity behind infinite fog gives no light: lamps and a sky instead
        world = c.sky(rng)
    else:
        world = s.world(config, rng, visible=True)
    if effect == "fog":
        world = replace(world, fog_density=round(c.lerp(0.02, 0.15, strength), 4), fog_color=c.hsv(0.6, 0.1, 0.9))
    fstop = round(c.lerp(0.8, 2.8, 1 - strength), 3) if effect == "bokeh" else 0.0
    cam = c.orbit_camera((0.0, 0.0, 0.4), radius=3.0, azimuth=azimuth, elevation=c.lerp(0.15, 0.8, u[4]),
                         aspect=config.aspect, margin=0.8, focal_mm=50.0 if effect == "bokeh" else 35.0, fstop=fstop)
    lights = s.lights(rng, world, strength=0.3 if effect == "glow" else 1.0)
    scene = Scene(category=config.category, objects=tuple(objects), lights=lights, camera=cam, world=world,
                  background=bd.parts, params={"effect": effect, "strength": round(strength, 4), "count": count})
    return _with_plume(scene, rng, effect, strength) if effect in ("smoke", "fire") else scene


def _with_plume(scene: Scene, rng: np.random.Generator, effect: str, strength: float) -> Scene:
    """A simulated smoke plume (or a fire with smoke above it) among the objects (``synth_render.simulation``)."""
    tier = simulation.tier_of(scene.complexity)
    grey = float(rng.uniform(0.35, 0.85))
    sim = Simulation(kind="smoke" if effect == "smoke" else "fire", scenario="plume", seed=int(rng.integers(2**31)),
                     tier=tier, origin=(0.0, 0.0, 0.0), size=(1.2, 1.2, 1.8),
                     angle=round(float(rng.uniform(0, 2 * math.pi)), 4), wind=round(c.lerp(0.0, 0.08, strength), 4),
                     source=round(c.lerp(0.08, 0.16, strength), 4), material=Material(color=(grey, grey, grey)),
                     density=round(c.lerp(4.0, 12.0, strength), 3))
    first = max((o.id for o in scene.objects), default=0) + 1
    plume: list[SceneObject] = []
    if effect == "fire":
        plume.append(SceneObject(id=first, cls="fire", parts=(), simulation=replace(
            sim, part="flame", density=2.0, material=Material(color=(1.0, 0.5, 0.1)),
            temperature=round(c.lerp(1300.0, 1900.0, strength), 1))))
        plume.append(SceneObject(id=first + 1, cls="smoke", parts=(), simulation=replace(
            sim, part="smoke", material=Material(color=(0.15, 0.15, 0.15)))))
    else:
        plume.append(SceneObject(id=first, cls="smoke", parts=(), simulation=sim))
    return replace(scene, objects=(*scene.objects, *plume), params={**scene.params, "simulationTier": tier})
