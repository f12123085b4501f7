"""Materials: a few large objects whose surfaces vary: pattern, metal, roughness, glass, PBR sets.

Strata: texture pattern, metallic/roughness regime, transmission, pattern scale, camera azimuth.
Objects stand on a table or against a wall under an HDRI (reflections and refraction show it).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import PATTERNS, Material, Part, Scene, SceneObject, Shape

_REGIMES = ("matte", "glossy", "metal", "brushed", "glass", "emissive")
_SHAPES: tuple[Shape, ...] = ("sphere", "rounded_cube", "torus", "cylinder", "capsule", "bottle", "rock_a")


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    pattern = c.pick(PATTERNS, u[0])
    regime = c.pick(_REGIMES, u[1])
    count = 1 + int(rng.integers(4))
    azimuth = u[4] * 2 * math.pi
    objects = []
    for i in range(count):
        base = c.material(rng, pattern=pattern)
        mat = Material(
            color=base.color, color2=base.color2, pattern=pattern,
            pattern_scale=round(c.lerp(2.0, 20.0, u[3]), 3),
            roughness={"matte": 0.9, "glossy": 0.1, "metal": 0.15, "brushed": 0.45, "glass": 0.02,
                       "emissive": 0.5}[regime],
            metallic=1.0 if regime in ("metal", "brushed") else 0.0,
            transmission=round(c.lerp(0.7, 1.0, u[2]), 3) if regime == "glass" else 0.0,
            emission=2.0 if regime == "emissive" else 0.0,
            bump=base.bump,
        )
        if regime in ("matte", "glossy") and rng.random() < 0.5:
            tex = s.texture(config, rng)
            if tex is not None:
                mat = replace(mat, texture=tex)
        shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
        sz = float(rng.uniform(0.9, 1.3))
        lift = 0.15 if shape == "torus" else 0.5
        objects.append(SceneObject(id=i + 1, cls=c.label(shape), parts=(Part(shape, mat, location=(0.0, 0.0, lift)),),
                                   rotation=(0.0, 0.0, round(float(rng.uniform(0, 6.28)), 4)), scale=(sz, sz, sz)))
    spread = 0.4 + 0.7 * count
    kind: s.BackdropKind = "table" if rng.random() < 0.5 else "wall"
    bd = s.backdrop(config, rng, kind, extent=spread + 0.4, facing=azimuth)
    placed = s.place_subjects(bd.layout, rng, objects, radius=spread, on=bd.top)
    world = s.world(config, rng, prefer=(*s.INDOOR, "courtyard", "city"), visible=rng.random() < 0.6,
                    strength=(1.0, 1.5))
    cam = c.orbit_camera((0.0, 0.0, bd.center[2] + 0.5), radius=spread + 0.4, azimuth=azimuth,
                         elevation=float(rng.uniform(0.2, 0.7)), aspect=config.aspect, margin=1.0)
    return Scene(category=config.category, objects=tuple(placed), lights=s.lights(rng, world), camera=cam,
                 world=world, background=bd.parts,
                 params={"pattern": pattern, "regime": regime, "count": count, "backdrop": kind})
