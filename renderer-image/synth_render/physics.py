"""Physics placement: objects dropped from seeded poses and settled by a rigid-body engine.

PyBullet (the engine Kubric settles its scenes with), not Blender's rigid body: it is a pure
Python module with no scene state, so settling runs before the Blender driver is involved, in
the same pure ``(scene, seed) -> scene`` shape as the generators, is tested without Blender,
and costs milliseconds. Bullet is deterministic for the same inputs in the same order on one
thread (``deterministicOverlappingPairs``, a fixed time step and a fixed, seeded step count; no
wall clock, no sleeping islands), so a re-render settles to the very same poses.

Each moving object gets one convex hull around its parts (``shapes.hull_points``: conservative,
so the render mesh lies inside it), its mass from its hull box at one density. The ground is a
plane; tables, walls and objects that do not move (library assets, simulations, moving objects)
are fixed hulls. Objects start where ``placement.Layout`` dropped them, lifted and turned by a
seeded pose (most tumble freely, some fall nearly upright), far enough apart to start without
contact. After the run the engine's own contact query measures the deepest penetration and what
each object rests on; both go into the scene's :class:`~synth_render.scene.Settling`.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from synth_render.scene import Part, Scene, SceneObject, Settling
from synth_render.shapes import hull_points
from synth_render.transforms import trs

DT = 1.0 / 240.0
"""Bullet's default step; smaller steps cost more, larger ones let thin objects tunnel."""
STEPS = (480, 600)
"""Steps drawn per sample (2-2.5 simulated seconds: a dropped object has come to rest)."""
DENSITY = 400.0
"""kg per m³ of hull box: one density, so bigger objects weigh more."""
TUMBLE = 0.75
"""Share of objects dropped with a uniformly random orientation (the rest fall nearly upright)."""
REST_SPEED = 0.05
"""m/s: after the seeded steps, the run goes on in blocks of ``EXTRA_BLOCK`` steps while a body is faster."""
EXTRA_BLOCK = 60
MAX_EXTRA_BLOCKS = 12
SOLVER_ITERATIONS = 20
"""Constraint solver iterations per step (fixed: part of what makes a run reproducible)."""
CONTACT = 2e-3
"""A body closer than this to another touches it (metres)."""


@dataclass(frozen=True)
class Hull:
    """A convex collision shape in an object's frame (scale applied): points, centre of mass, bounds."""

    points: np.ndarray
    com: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def radius(self) -> float:
        """Radius of the ball around the centre of mass that holds the hull."""
        return float(np.linalg.norm(self.points - self.com, axis=1).max())


@lru_cache(maxsize=4096)
def _part_hull(shape: str, location: tuple[float, ...], rotation: tuple[float, ...], scale: tuple[float, ...],
               obj_scale: tuple[float, ...]) -> np.ndarray:
    """Hull points of one part in its object's frame: cached per shape and transform, per worker."""
    m = np.diag([*obj_scale, 1.0]) @ trs(location, rotation, scale)  # type: ignore[arg-type]
    pts = hull_points(shape)
    out = pts @ m[:3, :3].T + m[:3, 3]
    out.setflags(write=False)
    return out


def object_hull(obj: SceneObject) -> Hull | None:
    """The convex hull of an object's parts in its own frame (its scale applied), or None without parts."""
    if obj.asset is not None and not obj.parts:
        h = obj.asset.size / 2  # the asset's safe bounds (placement.asset_bounds): a size cube on its base
        pts = np.array([[x, y, z] for x in (-h, h) for y in (-h, h) for z in (0.0, 2 * h)])
    elif obj.parts:
        pts = np.concatenate([_part_hull(str(p.primitive), p.location, p.rotation, p.scale, obj.scale)
                              for p in obj.parts])
    else:
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return Hull(points=pts, com=(lo + hi) / 2, lo=lo, hi=hi)


def _background_hull(part: Part) -> np.ndarray:
    m = trs(part.location, part.rotation, part.scale)
    return np.asarray(hull_points(str(part.primitive)) @ m[:3, :3].T + m[:3, 3])


def movable(obj: SceneObject) -> bool:
    """Whether physics moves this object (library assets, simulations and moving objects stay put)."""
    return bool(obj.parts) and obj.asset is None and obj.simulation is None and not any(obj.velocity)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (from a uniform unit quaternion)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return _quat_matrix(q)


def _quat_matrix(q: Sequence[float] | np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _matrix_quat(r: np.ndarray) -> list[float]:
    """[x, y, z, w] of a rotation matrix (Shepperd's method)."""
    t = float(np.trace(r))
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = math.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k]) * 2
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    return [float(v) for v in q]


def euler_xyz(r: np.ndarray) -> tuple[float, float, float]:
    """Euler XYZ angles (Blender's order, ``transforms.trs``: R = Rz @ Ry @ Rx) of a rotation matrix."""
    sy = -float(r[2, 0])
    b = math.asin(max(-1.0, min(1.0, sy)))
    if abs(sy) < 0.999999:
        a = math.atan2(float(r[2, 1]), float(r[2, 2]))
        c = math.atan2(float(r[1, 0]), float(r[0, 0]))
    else:  # gimbal lock: put the whole turn about z
        a = 0.0
        c = math.atan2(-float(r[0, 1]), float(r[1, 1]))
    return a, b, c


def _rotation_of(obj: SceneObject) -> np.ndarray:
    return trs((0.0, 0.0, 0.0), obj.rotation, (1.0, 1.0, 1.0))[:3, :3]


class _Client:
    """PyBullet's functions bound to one physics server (``physicsClientId``), constants as they are."""

    def __init__(self, module: Any, cid: int) -> None:
        self._pb, self._cid = module, cid

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._pb, name)
        return functools.partial(attr, physicsClientId=self._cid) if callable(attr) else attr


@lru_cache(maxsize=1)
def _client() -> Any:
    """The worker's one PyBullet client (DIRECT: no GUI, no threads); reset before every settle.

    PyBullet prints its build time when loaded: fds 1 and 2 point at /dev/null meanwhile, as the
    worker's stdout and stderr carry only its own lines.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    keep = {fd: os.dup(fd) for fd in (1, 2)}
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in keep:
        os.dup2(null, fd)
    try:
        import pybullet

        client = _Client(pybullet, pybullet.connect(pybullet.DIRECT))
        ctypes.CDLL(None).fflush(None)  # C stdio buffers the message: out with it while fd 1 is /dev/null
        return client
    finally:
        for fd, saved in keep.items():
            os.dup2(saved, fd)
            os.close(saved)
        os.close(null)


def engine_version() -> str:
    """``pybullet <API version>`` (loads PyBullet quietly through :func:`_client` first)."""
    return f"pybullet {_client().getAPIVersion()}"


def _start_poses(scene: Scene, hulls: dict[int, Hull], moving: list[int],
                 rng: np.random.Generator) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(centre of mass, rotation) of each moving object at the start: lifted, turned, clear of all others."""
    by_id = {o.id: o for o in scene.objects}
    placed: list[tuple[np.ndarray, float]] = []  # balls (centre, radius) of the objects posed so far
    for o in scene.objects:
        if o.id not in moving and o.id in hulls:
            h = hulls[o.id]
            placed.append((_rotation_of(o) @ h.com + np.asarray(o.location), h.radius))
    poses: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for oid in moving:
        o, h = by_id[oid], hulls[oid]
        upright_com = _rotation_of(o) @ h.com + np.asarray(o.location)
        if rng.random() < TUMBLE:
            rot = _random_rotation(rng)
        else:  # nearly upright: a small tilt about a random horizontal axis, the object's own heading kept
            axis = float(rng.uniform(0, 2 * math.pi))
            tilt = float(rng.uniform(0.0, 0.25))
            rot = trs((0, 0, 0), (tilt * math.cos(axis), tilt * math.sin(axis), 0.0), (1, 1, 1))[:3, :3] \
                @ _rotation_of(o)
        r = h.radius
        base = float(upright_com[2] - (h.com[2] - h.lo[2]))  # the surface the layout put it on
        c = np.array([upright_com[0], upright_com[1], base + r + float(rng.uniform(0.02, 0.3)) * r + 1e-3])
        for pc, pr in placed:  # clear of everything posed so far: raise it until the balls part
            d = float(np.linalg.norm(c[:2] - pc[:2]))
            if d < r + pr:
                c[2] = max(c[2], float(pc[2]) + math.sqrt(max((r + pr) ** 2 - d * d, 0.0)) + 1e-3)
        placed.append((c, r))
        poses[oid] = (c, rot)
    return poses


def _add_hull(pb: Any, points: np.ndarray, *, mass: float, com: np.ndarray, pos: np.ndarray,
              rot: np.ndarray) -> int:
    shape = pb.createCollisionShape(pb.GEOM_MESH, vertices=(points - com).tolist())
    body = pb.createMultiBody(baseMass=mass, baseCollisionShapeIndex=shape, basePosition=pos.tolist(),
                              baseOrientation=_matrix_quat(rot))
    pb.changeDynamics(body, -1, lateralFriction=0.6, rollingFriction=0.03, spinningFriction=0.005,
                      restitution=0.1, linearDamping=0.1, angularDamping=0.4)
    return int(body)


def _world(pb: Any, scene: Scene, hulls: dict[int, Hull],
           poses: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[dict[int, int], dict[int, str]]:
    """A fresh world: ground plane, fixed background hulls, the objects (those in ``poses`` movable).

    Returns (object id -> body, body -> name: ``ground``, ``background`` or the object id).
    """
    pb.resetSimulation()
    pb.setPhysicsEngineParameter(fixedTimeStep=DT, numSolverIterations=SOLVER_ITERATIONS, numSubSteps=0,
                                 deterministicOverlappingPairs=1, enableConeFriction=1)
    pb.setGravity(0, 0, -9.81)
    plane = pb.createMultiBody(0, pb.createCollisionShape(pb.GEOM_PLANE))
    pb.changeDynamics(plane, -1, lateralFriction=0.6, restitution=0.1)
    names: dict[int, str] = {plane: "ground"}
    for part in scene.background:
        if part.primitive == "plane":
            continue  # the ground, the road and its markings: all on the ground plane
        pts = _background_hull(part)
        names[_add_hull(pb, pts, mass=0.0, com=np.zeros(3), pos=np.zeros(3), rot=np.eye(3))] = "background"
    bodies: dict[int, int] = {}
    for o in scene.objects:
        if o.id not in hulls:
            continue
        h = hulls[o.id]
        if o.id in poses:
            c, rot = poses[o.id]
            mass = max(float(np.prod(h.hi - h.lo)) * DENSITY, 0.01)
        else:
            rot = _rotation_of(o)
            c, mass = rot @ h.com + np.asarray(o.location), 0.0
        body = _add_hull(pb, h.points, mass=mass, com=h.com, pos=c, rot=rot)
        bodies[o.id] = body
        names[body] = str(o.id)
    return bodies, names


@dataclass(frozen=True)
class Contacts:
    """What the engine measures on a scene's poses as they are (nothing moves)."""

    max_penetration: float
    """Deepest overlap between any two bodies (ground, background, objects), metres; 0 when none."""
    supports: dict[int, str]
    """Object id -> what its lowest contact touches (``ground``, ``background``, an object id, ``none``)."""


def measure(scene: Scene, *, ids: Sequence[int] | None = None) -> Contacts:
    """Penetration and supports of the scene's recorded poses, from a world rebuilt from them.

    This reads the poses the metadata and the renderer use (rounded, converted to Euler angles),
    not the engine's internal state, so it checks what a user gets.
    """
    hulls = {o.id: h for o in scene.objects if (h := object_hull(o)) is not None}
    pb = _client()
    bodies, names = _world(pb, scene, hulls, {})
    pb.performCollisionDetection()
    deepest = 0.0
    supports: dict[int, str] = {}
    for oid in (ids if ids is not None else list(bodies)):
        body = bodies[oid]
        under: list[tuple[float, str]] = []
        for other, name in names.items():
            if other == body:
                continue
            close = pb.getClosestPoints(body, other, CONTACT)
            if close:
                deepest = max(deepest, -min(float(c[8]) for c in close))
                under.append((min(float(c[5][2]) for c in close), name))  # contact height on this body
        supports[oid] = min(under)[1] if under else "none"
    return Contacts(max_penetration=round(deepest, 6), supports=supports)


def settle(scene: Scene, *, seed: int) -> Scene:
    """The scene with its movable objects dropped and settled (see the module docstring)."""
    hulls = {o.id: h for o in scene.objects if (h := object_hull(o)) is not None}
    moving = [o.id for o in scene.objects if movable(o) and o.id in hulls]
    if not moving:
        return scene
    rng = np.random.default_rng([seed & 0xFFFFFFFFFFFF, 0x5E771E])
    steps = int(rng.integers(STEPS[0], STEPS[1] + 1))
    poses = _start_poses(scene, hulls, moving, rng)
    pb = _client()
    bodies, _ = _world(pb, scene, hulls, poses)
    for _ in range(steps):
        pb.stepSimulation()
    for _ in range(MAX_EXTRA_BLOCKS):  # still moving (a toppled stack still falling): more steps, as many each run
        if max(float(np.linalg.norm(pb.getBaseVelocity(bodies[oid])[0])) for oid in moving) < REST_SPEED:
            break
        for _ in range(EXTRA_BLOCK):
            pb.stepSimulation()
        steps += EXTRA_BLOCK
    speed = 0.0
    settled: dict[int, SceneObject] = {}
    by_id = {o.id: o for o in scene.objects}
    for oid in moving:
        body = bodies[oid]
        pos, quat = pb.getBasePositionAndOrientation(body)
        lin, _ = pb.getBaseVelocity(body)
        speed = max(speed, float(np.linalg.norm(lin)))
        rot = _quat_matrix(quat)
        loc = np.asarray(pos) - rot @ hulls[oid].com
        ex, ey, ez = euler_xyz(rot)
        settled[oid] = replace(by_id[oid], location=(round(float(loc[0]), 5) + 0.0, round(float(loc[1]), 5) + 0.0,
                                                     round(float(loc[2]), 5) + 0.0),
                               rotation=(round(ex, 6) + 0.0, round(ey, 6) + 0.0, round(ez, 6) + 0.0))
    out = replace(scene, objects=tuple(settled.get(o.id, o) for o in scene.objects))
    found = measure(out, ids=moving)  # on the recorded poses, in a world rebuilt from them
    report = Settling(engine=engine_version(), seed=int(seed), steps=steps, dt=round(DT, 9),
                      objects=tuple(moving), supports={str(k): v for k, v in found.supports.items()},
                      max_penetration=found.max_penetration, max_speed=round(speed, 6))
    return replace(out, physics=report)
