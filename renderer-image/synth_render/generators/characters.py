"""Characters: articulated mannequin-like people with smooth limbs, in varied poses and clothing.

Strata: number of figures, arm pose, leg stride, body height, camera azimuth. Each figure is a
set of capsule limbs, ball joints, a rounded torso and pelvis, a head and feet, posed by joint
angles; clothed (shirt, trousers, shoes, skin) or a plain wooden mannequin.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.generators import _common as c
from synth_render.generators import _scenery as s
from synth_render.generators.base import GenConfig
from synth_render.scene import Material, Part, Scene, SceneObject


def _limb(a: np.ndarray, b: np.ndarray, radius: float, mat: Material) -> Part:
    """A capsule from joint ``a`` to joint ``b`` (its rounded ends reach into the joints)."""
    d = b - a
    length = float(np.linalg.norm(d))
    theta = math.acos(max(-1.0, min(1.0, float(d[2]) / length)))
    phi = math.atan2(float(d[1]), float(d[0]))
    mid = (a + b) / 2
    return Part("capsule", mat, location=c.r3(tuple(mid)), rotation=(0.0, round(theta, 4), round(phi, 4)),
                scale=c.r3((2 * radius, 2 * radius, length + 1.2 * radius)))


def _ball(p: np.ndarray, radius: float, mat: Material) -> Part:
    return Part("sphere", mat, location=c.r3(tuple(p)), scale=c.r3((2 * radius,) * 3))


def _figure(rng: np.random.Generator, oid: int, height: float, arms: float, stride: float) -> SceneObject:
    k = height / 1.8
    mannequin = rng.random() < 0.3
    if mannequin:
        wood = Material(color=c.hsv(0.08, 0.45, float(rng.uniform(0.5, 0.8))), color2=c.hsv(0.07, 0.5, 0.35),
                        pattern="wood", pattern_scale=6.0, roughness=0.4, bump=0.02)
        skin = shirt = sleeve = pants = shoes = wood
    else:
        skin = Material(color=c.hsv(float(rng.uniform(0.04, 0.09)), float(rng.uniform(0.3, 0.6)),
                                    float(rng.uniform(0.3, 0.95))), roughness=0.55)
        shirt = c.material(rng, pattern=("plain", "plain", "checker", "wave")[int(rng.integers(4))], metallic=0.0,
                           roughness=0.85)
        sleeve = shirt if rng.random() < 0.5 else skin
        pants = Material(color=c.color(rng, sat=(0.1, 0.6), val=(0.1, 0.5)), roughness=0.8)
        shoes = Material(color=c.color(rng, sat=(0.0, 0.3), val=(0.03, 0.3)), roughness=0.4)
    hip_z, knee_z, ankle_z = 0.93 * k, 0.5 * k, 0.09 * k
    thigh, shin = hip_z - knee_z, knee_z - ankle_z
    sh_z, sh_y = 1.43 * k, 0.2 * k
    upper, fore = 0.3 * k, 0.27 * k
    a = arms * math.pi * 0.75
    bend = float(rng.uniform(0.0, 1.2))
    parts: list[Part] = [
        Part("rounded_cube", pants, location=(0.0, 0.0, hip_z + 0.02 * k), scale=c.r3((0.2 * k, 0.34 * k, 0.2 * k))),
        Part("capsule", shirt, location=(0.0, 0.0, 1.2 * k), scale=c.r3((0.24 * k, 0.4 * k, 0.58 * k))),
        Part("capsule", skin, location=(0.0, 0.0, 1.52 * k), scale=c.r3((0.09 * k, 0.09 * k, 0.14 * k))),
        Part("sphere", skin, location=(0.01 * k, 0.0, 1.66 * k), scale=c.r3((0.21 * k, 0.18 * k, 0.25 * k))),
    ]
    for side in (-1.0, 1.0):
        swing = side * stride * 0.5
        hip = np.array([0.0, side * 0.095 * k, hip_z])
        knee = hip + thigh * np.array([math.sin(swing), 0.0, -math.cos(swing)])
        kneel = max(0.0, -swing) * 0.6  # the trailing leg bends at the knee
        ankle = knee + shin * np.array([math.sin(swing - kneel), 0.0, -math.cos(swing - kneel)])
        parts += [_limb(hip, knee, 0.075 * k, pants), _ball(knee, 0.07 * k, pants),
                  _limb(knee, ankle, 0.06 * k, pants),
                  Part("rounded_cube", shoes, location=c.r3((float(ankle[0]) + 0.05 * k, float(ankle[1]),
                                                             float(ankle[2]) - 0.045 * k)),
                       scale=c.r3((0.26 * k, 0.1 * k, 0.09 * k)))]
        shoulder = np.array([0.0, side * sh_y, sh_z])
        raise_ = a * float(rng.uniform(0.8, 1.0))
        elbow = shoulder + upper * np.array([0.0, side * math.sin(raise_), -math.cos(raise_)])
        fdir = np.array([math.sin(bend), side * math.sin(raise_) * math.cos(bend), -math.cos(raise_) * math.cos(bend)])
        hand = elbow + fore * fdir / np.linalg.norm(fdir)
        parts += [_ball(shoulder, 0.065 * k, shirt), _limb(shoulder, elbow, 0.05 * k, shirt),
                  _ball(elbow, 0.048 * k, sleeve), _limb(elbow, hand, 0.043 * k, sleeve),
                  _ball(hand, 0.05 * k, skin)]
    return SceneObject(id=oid, cls="person", parts=tuple(parts),
                       rotation=(0.0, 0.0, round(float(rng.uniform(0, 2 * math.pi)), 4)))


def generate(config: GenConfig, rng: np.random.Generator) -> Scene:
    u = config.strata
    count = 1 + int(u[0] * 4)
    arms = u[1]
    stride = c.lerp(0.0, 0.6, u[2])
    height = c.lerp(1.4, 2.0, u[3])
    azimuth = u[4] * 2 * math.pi
    spread = 0.5 + 0.6 * count
    figures = [_figure(rng, i + 1, height * float(rng.uniform(0.9, 1.1)), arms, stride) for i in range(count)]
    kind: s.BackdropKind = "wall" if rng.random() < 0.3 else "ground"
    bd = s.backdrop(config, rng, kind, extent=spread + 0.3, facing=azimuth,
                    floor="floor" if kind == "wall" else ("grass" if rng.random() < 0.4 else "floor"))
    placed = s.place_subjects(bd.layout, rng, figures, radius=spread)
    placed = s.add_clutter(rng, bd.layout, placed, share=0.3, size=0.35, radius=spread + 0.6)
    world = s.world(config, rng, prefer=s.OUTDOOR if kind == "ground" else s.INDOOR, visible=True)
    cam = c.orbit_camera((0.0, 0.0, height * 0.5), radius=max(height * 0.7, spread),
                         azimuth=azimuth, elevation=float(rng.uniform(0.05, 0.5)), aspect=config.aspect,
                         margin=1.0, focal_mm=40.0)
    return Scene(category=config.category, objects=tuple(placed), lights=s.lights(rng, world), camera=cam,
                 world=world, background=bd.parts,
                 params={"count": count, "arms": round(arms, 4), "stride": round(stride, 4),
                         "height": round(height, 4), "backdrop": kind})
