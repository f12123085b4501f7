"""Framing: the camera aims at the subjects and moves until they fill a seeded share of the frame.

Runs after placement and settling (``generators.staging``), when the objects' final poses are
known. The camera keeps the direction, lens and roll its generator chose (the category's
strata); it looks at the centre of the subjects' union 3D box (a seeded nudge off-centre) and
slides along its line of sight until the union of the subjects' projected 3D boxes covers a
target share of the image area, drawn per sample from the category's range, without leaving
the frame. Distractors do not count as subjects. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from synth_render import post
from synth_render.groundtruth import aabb_corners, local_bounds
from synth_render.scene import Camera, Framing, Scene, SceneObject
from synth_render.transforms import trs

FILL: dict[str, tuple[float, float]] = {
    "geometry": (0.2, 0.6),
    "materials": (0.25, 0.7),
    "lighting": (0.2, 0.6),
    "camera": (0.2, 0.7),
    "composition": (0.25, 0.7),
    "characters": (0.15, 0.5),
    "vehicles": (0.2, 0.6),
}
"""Share of the frame's area the subjects' union box covers, per category (drawn uniformly in the range).
Categories not listed keep their generator's camera (landscapes, close-ups of liquids, effects, motion)."""
MAX_SIDE = 0.94
"""The union box never spans more than this share of the frame's width or height."""
_SIZE = 1000
"""Reference image height for the projections (fractions do not depend on it)."""


def _world_corners(obj: SceneObject) -> np.ndarray:
    lo, hi = local_bounds(obj)
    s = np.abs(np.asarray(obj.scale, dtype=np.float64))
    m = trs(obj.location, obj.rotation, (1.0, 1.0, 1.0))
    c = aabb_corners(lo * s, hi * s)
    return np.asarray(c @ m[:3, :3].T + m[:3, 3])


def _extent(cam: Camera, pts: np.ndarray, aspect: float) -> tuple[float, float, float, float, float] | None:
    """(area share, width share, height share, centre u, centre v) of the projected points' box, as
    shares of the frame; None if any point is behind the camera. Area > 1: the box leaves the frame."""
    w, h = round(_SIZE * aspect), _SIZE
    uv, z = post.project(pts, post.intrinsics(cam, w, h), post.extrinsics(cam))
    if (z <= 0.05).any():
        return None
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    fw, fh = float(hi[0] - lo[0]) / w, float(hi[1] - lo[1]) / h
    inside = lo[0] >= 0 and lo[1] >= 0 and hi[0] <= w and hi[1] <= h
    cu, cv = float(lo[0] + hi[0]) / 2 / w, float(lo[1] + hi[1]) / 2 / h
    return (fw * fh if inside else 1.0 + fw * fh), fw, fh, cu, cv


def _pan(cam: Camera, aim: np.ndarray, du: float, dv: float, dist: float, aspect: float) -> np.ndarray:
    """The aim point moved in the image plane so that a point at (du, dv) frame shares off the wanted
    spot comes to it (the camera moves with the aim: same direction, same distance)."""
    right, up, _ = post.camera_basis(cam)
    f = cam.focal_mm / cam.sensor_mm  # focal length in image widths
    return np.asarray(aim + 0.9 * dist / f * (du * right - dv / aspect * up))


def _blocked(a: np.ndarray, b: np.ndarray, walls: list[np.ndarray]) -> bool:
    """Whether the segment a-b crosses a background solid (given as the inverse of its unit-box transform)."""
    for inv in walls:
        p, q = inv[:3, :3] @ a + inv[:3, 3], inv[:3, :3] @ b + inv[:3, 3]
        d = q - p
        t0, t1 = 0.0, 1.0
        for k in range(3):  # slab test against the unit box [-0.5, 0.5]^3
            if abs(d[k]) < 1e-12:
                if abs(p[k]) > 0.5:
                    break
                continue
            u, v = (-0.5 - p[k]) / d[k], (0.5 - p[k]) / d[k]
            t0, t1 = max(t0, min(u, v)), min(t1, max(u, v))
            if t0 > t1:
                break
        else:
            return True
    return False


def _inside_object(p: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]], pad: float = 0.1) -> bool:
    return any(bool(np.all(p > lo - pad) and np.all(p < hi + pad)) for lo, hi in boxes)


def _camera(old: Camera, aim: np.ndarray, direction: np.ndarray, dist: float) -> Camera:
    loc = aim + direction * dist
    return replace(old, location=(round(float(loc[0]), 4), round(float(loc[1]), 4), round(float(loc[2]), 4)),
                   look_at=(round(float(aim[0]), 4), round(float(aim[1]), 4), round(float(aim[2]), 4)))


def frame(scene: Scene, rng: np.random.Generator, *, fill: tuple[float, float], aspect: float) -> Scene:
    """The scene with its camera aimed at its subjects, at the distance that gives a fill in ``fill``."""
    subjects = [o for o in scene.objects if not o.distractor] or list(scene.objects)
    if not subjects:
        return scene
    pts = np.concatenate([_world_corners(o) for o in subjects])
    boxes = [(c.min(axis=0), c.max(axis=0)) for c in (_world_corners(o) for o in scene.objects)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    target = float(rng.uniform(*fill))
    want = (0.5 + float(rng.uniform(-0.06, 0.06)), 0.5 + float(rng.uniform(-0.06, 0.06)))  # seeded, near the centre
    aim = (lo + hi) / 2
    old = scene.camera
    ray = np.subtract(old.location, old.look_at)
    direction = ray / max(float(np.linalg.norm(ray)), 1e-9)
    dist = max(float(np.linalg.norm(ray)), 0.3)
    best: tuple[float, float, float, np.ndarray] | None = None  # (miss, distance, fill, aim) of the best fit
    for _ in range(24):
        cam = _camera(old, aim, direction, dist)
        ext = _extent(cam, pts, aspect)
        if ext is None:
            dist *= 1.25  # behind the camera: back off
            continue
        got, fw, fh, cu, cv = ext
        if got > 1.0 or max(fw, fh) > MAX_SIDE:
            aim = _pan(cam, aim, cu - want[0], cv - want[1], dist, aspect)
            dist *= max(max(fw, fh) / MAX_SIDE, 1.05)  # out of the frame: centre it and back off
            continue
        if best is None or abs(got - target) < best[0]:
            best = (abs(got - target), dist, got, aim)
        if abs(got - target) < 0.01 * target and abs(cu - want[0]) < 0.01 and abs(cv - want[1]) < 0.01:
            break
        aim = _pan(cam, aim, cu - want[0], cv - want[1], dist, aspect)
        dist *= math.sqrt(got / target)
    if best is not None:
        _, dist, got, aim = best
    else:
        got = 0.0
    walls = [np.linalg.inv(trs(p.location, p.rotation, p.scale)) for p in scene.background if p.primitive != "plane"]
    centre = (lo + hi) / 2
    sights = [aim, *(centre + 0.8 * (aabb_corners(lo, hi) - centre))]  # the aim and (inset) union box corners
    for targets in (sights, [aim]):  # the whole union box in sight if possible, else its centre
        d = dist
        while any(_blocked(aim + direction * d, t, walls) for t in targets) and d > 0.2 * dist:  # a wall in the way
            d *= 0.9
        if not any(_blocked(aim + direction * d, t, walls) for t in targets):
            if d != dist:
                ext = _extent(_camera(old, aim, direction, d), pts, aspect)
                got = ext[0] if ext is not None and ext[0] <= 1.0 else 0.0
            dist = d
            break
    while _inside_object(aim + direction * dist, boxes) and dist < 1e4:  # never inside an object
        dist *= 1.15
        ext = _extent(_camera(old, aim, direction, dist), pts, aspect)
        got = ext[0] if ext is not None and ext[0] <= 1.0 else 0.0
    cam = _camera(old, aim, direction, dist)
    return replace(scene, camera=cam, framing=Framing(target=round(target, 4), fill=round(got, 4),
                                                      distance=round(dist, 4)))
