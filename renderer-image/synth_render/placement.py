"""Placement: objects rest on surfaces and never interpenetrate, decided from bounds alone.

Pure and seeded, no physics engine: an object's axis-aligned bounds (from its parts' unit-shape
bounds in ``scene.SHAPE_BOUNDS``, its rotation and scale) give its footprint and height. A
:class:`Layout` drops objects onto the highest support under their footprint (the ground, a
table top, or the flat top of an object placed before), refusing any position where the bounds
would overlap another object or an obstacle (table, walls). Bounds are conservative, so no
two placed objects touch except where one stands on another. Same inputs, same layout, on
every machine: no simulation steps to drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from synth_render.scene import SHAPE_BOUNDS, Part, SceneObject, Vec3
from synth_render.transforms import trs

Box = tuple[np.ndarray, np.ndarray]
"""(min corner, max corner) of an axis-aligned box, world frame."""

EPS = 1e-6


def _corners(lo: Vec3, hi: Vec3) -> np.ndarray:
    return np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def part_bounds(part: Part, parent: np.ndarray) -> Box:
    """World bounds of one part under ``parent`` (conservative: the box of its transformed unit box)."""
    lo, hi = SHAPE_BOUNDS[part.primitive]
    pts = (parent @ trs(part.location, part.rotation, part.scale) @ _corners(lo, hi).T).T[:, :3]
    return pts.min(axis=0), pts.max(axis=0)


def object_bounds(obj: SceneObject, *, at: Vec3 | None = None) -> Box:
    """World bounds of an object (or of the object moved to ``at``)."""
    if obj.asset is not None and not obj.parts:
        return asset_bounds(obj.asset.size, float(obj.rotation[2]), obj.location if at is None else at)
    if obj.simulation is not None and not obj.parts:  # a simulated liquid/smoke: its domain (world coordinates)
        sim = obj.simulation
        lo = np.array([sim.origin[0] - sim.size[0] / 2, sim.origin[1] - sim.size[1] / 2, sim.origin[2]])
        return lo, lo + np.asarray(sim.size, dtype=np.float64)
    parent = trs(obj.location if at is None else at, obj.rotation, obj.scale)
    boxes = [part_bounds(p, parent) for p in obj.parts]
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


def asset_bounds(size: float, yaw: float, at: Vec3) -> Box:
    """Safe outer bounds of a library asset (largest dimension ``size``, base centred on ``at``, turned by ``yaw``).

    The exact mesh is known only in Blender, so the asset counts as a ``size`` cube standing on its base.
    """
    half = size / 2 * (abs(math.cos(yaw)) + abs(math.sin(yaw)))
    x, y, z = at
    return np.array([x - half, y - half, z]), np.array([x + half, y + half, z + size])


def overlap(a: Box, b: Box, *, gap: float = 0.0) -> bool:
    """True when the boxes share volume (touching faces do not count; ``gap`` widens x and y)."""
    g = np.array([gap, gap, 0.0])
    return bool(np.all(a[0] < b[1] + g - EPS) and np.all(b[0] < a[1] + g - EPS))


@dataclass(frozen=True)
class Surface:
    """A horizontal rectangle objects can stand on (the ground is a very large one)."""

    z: float
    x0: float
    y0: float
    x1: float
    y1: float

    def holds(self, box: Box) -> bool:
        """The box's footprint lies within the rectangle."""
        return (box[0][0] >= self.x0 - EPS and box[1][0] <= self.x1 + EPS
                and box[0][1] >= self.y0 - EPS and box[1][1] <= self.y1 + EPS)


GROUND = Surface(0.0, -1e6, -1e6, 1e6, 1e6)


@dataclass
class Layout:
    """Surfaces to stand on, obstacles to avoid and the objects placed so far."""

    surfaces: list[Surface] = field(default_factory=lambda: [GROUND])
    obstacles: list[Box] = field(default_factory=list)
    walls: list[tuple[float, float, float]] = field(default_factory=list)
    """Vertical walls as half-planes (nx, ny, d): a footprint must keep nx*x + ny*y <= d at every corner."""
    gap: float = 0.04
    """Minimum horizontal clearance between neighbours (metres)."""
    placed: list[Box] = field(default_factory=list)
    stackable: list[bool] = field(default_factory=list)

    def drop(self, obj: SceneObject, x: float, y: float, *, on: Surface | None = None,
             stackable: bool = False) -> SceneObject | None:
        """The object standing at (x, y) on ``on`` (default: the highest surface holding it), or None if blocked."""
        lo, hi = object_bounds(obj, at=(0.0, 0.0, 0.0))
        shift = np.array([x, y, 0.0])
        foot = (lo + shift, hi + shift)
        candidates = [on] if on is not None else sorted(self.surfaces, key=lambda s: -s.z)
        for surface in candidates:
            if not surface.holds(foot):
                continue
            z = surface.z - float(lo[2])
            box = (lo + np.array([x, y, z]), hi + np.array([x, y, z]))
            if self._blocked(box, gap=self.gap):
                return None
            return self._keep(obj, (x, y, z), box, stackable)
        return None

    def stack(self, obj: SceneObject, below: int, *, stackable: bool = True) -> SceneObject | None:
        """The object standing centred on top of placed object ``below`` (which must be flat-topped)."""
        if not self.stackable[below]:
            return None
        base = self.placed[below]
        lo, hi = object_bounds(obj, at=(0.0, 0.0, 0.0))
        x, y = float(base[0][0] + base[1][0]) / 2, float(base[0][1] + base[1][1]) / 2
        z = float(base[1][2] - lo[2])
        box = (lo + np.array([x, y, z]), hi + np.array([x, y, z]))
        if self._blocked(box, gap=0.0):
            return None
        return self._keep(obj, (x, y, z), box, stackable)

    def scatter(self, obj: SceneObject, rng: np.random.Generator, *, center: tuple[float, float] = (0.0, 0.0),
                radius: float = 1.0, on: Surface | None = None, tries: int = 40,
                stackable: bool = False) -> SceneObject | None:
        """The object dropped at the first free random spot in a disc (None if the disc is full)."""
        for _ in range(tries):
            r = radius * math.sqrt(float(rng.random()))
            a = float(rng.uniform(0, 2 * math.pi))
            placed = self.drop(obj, center[0] + r * math.cos(a), center[1] + r * math.sin(a), on=on,
                               stackable=stackable)
            if placed is not None:
                return placed
        return None

    def _blocked(self, box: Box, *, gap: float) -> bool:
        if any(overlap(box, o) for o in self.obstacles) or any(overlap(box, p, gap=gap) for p in self.placed):
            return True
        xs, ys = (box[0][0], box[1][0]), (box[0][1], box[1][1])
        return any(nx * x + ny * y > d + EPS for nx, ny, d in self.walls for x in xs for y in ys)

    def _keep(self, obj: SceneObject, at: tuple[float, float, float], box: Box, stackable: bool) -> SceneObject:
        loc = (round(at[0], 4), round(at[1], 4), math.ceil(at[2] * 1e4) / 1e4 + 0.0)  # rounded up: never sinks
        lift = np.array([loc[0] - at[0], loc[1] - at[1], loc[2] - at[2]])
        self.placed.append((box[0] + lift, box[1] + lift))
        self.stackable.append(stackable)
        return replace(obj, location=loc)
