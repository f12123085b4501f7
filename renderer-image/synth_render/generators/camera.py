"""Camera: one scene seen through varied lenses, heights, rolls and apertures.

Strata: focal length (log scale), elevation, roll, aperture (depth of field), azimuth.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import Part, Scene, SceneObject, Shape

_SHAPES: tuple[Shape, ...] = ("cube", "sphere", "cylinder", "cone", "ico", "rounded_cube", "capsule")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    focal = round(14 * (135 / 14) ** u[0], 3)
    elevation = c.lerp(0.05, 1.35, u[1])
    roll = c.lerp(-0.35, 0.35, u[2])
    fstop = 0.0 if u[3] < 0.6 else round(c.lerp(1.4, 5.6, (u[3] - 0.6) / 0.4), 3)
    azimuth = u[4] * 2 * math.pi
    subjects = []
    for i in range(4 + int(rng.integers(4))):
        shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
        sz = float(rng.uniform(0.6, 1.3))
        subjects.append(SceneObject(id=i + 1, cls=c.label(shape), parts=(Part(shape, c.material(rng)),),
                                    rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)), scale=(sz, sz, sz)))
    bd = s.backdrop(config, rng, "ground" if rng.random() < 0.6 else "wall", extent=3.2, facing=azimuth)
    objects = s.place_subjects(bd.layout, rng, subjects, radius=2.6)
    objects = s.add_clutter(rng, bd.layout, objects, share=0.25, size=0.35, radius=3.2)
    world = s.world(config, rng, visible=True)
    cam = c.orbit_camera((0.0, 0.0, 0.4), radius=float(rng.uniform(1.8, 3.2)), azimuth=azimuth,
                         elevation=elevation, focal_mm=focal, aspect=config.aspect, margin=0.8, roll=roll,
                         fstop=fstop)
    return Scene(category=config.category, objects=tuple(objects), lights=s.lights(rng, world), camera=cam,
                 world=world, background=bd.parts,
                 params={"focal_mm": focal, "elevation": round(elevation, 4), "roll": round(roll, 4),
                         "fstop": fstop})
