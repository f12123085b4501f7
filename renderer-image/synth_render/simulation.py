"""Project-owned deterministic simulations: a particle liquid and a buoyant smoke/fire plume.

Blender's Mantaflow cannot bake headless in the bpy wheel we ship (``'LevelsetGrid' object has
no attribute 'setConst'`` then an abort, princeton-vl/infinigen#318), so liquids and smoke are
simulated here in numpy and only drawn by the Blender layer (``synth_render.blender_sim``).

* **Liquid**: position-based particles (gravity, a grid density constraint that keeps them about
  one spacing apart, collisions with a glass and the ground) for ``pour``, ``fill`` and
  ``splash`` scenarios.
* **Smoke / fire**: stable fluids (Stam) on a small grid driven by buoyancy of an advected
  temperature, with marker particles emitted at the source and carried by the velocity field;
  young particles are flame, older ones smoke.

Everything is seeded: the same :class:`scene.Simulation` gives the same particles. A solver that
runs past its time budget stops stepping (``cut``); results are cached per worker (keyed by the
parameters, capped in bytes). No Blender here.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_render.scene import Simulation

TIERS = ((0.1, 0), (0.2, 1), (2.0, 2))
"""(complexity upper bound, tier): the scene's complexity picks a simulation resolution tier (the
built-in fluids/effects scenes span complexity ~0.04..0.25, so all three tiers occur)."""
LIQUID_PARTICLES = (600, 1200, 2400)
"""Liquid particles per tier."""
SMOKE_GRID = (12, 16, 20)
"""Smoke grid cells along the domain's width per tier (the height is 1.5 times that)."""
SMOKE_PARTICLES = (1600, 2400, 4000)
STEPS = {"liquid": 48, "smoke": 40, "fire": 40}
"""Solver steps per bake (fixed: the sim is a function of its parameters only)."""
BUDGET_ENV = "SYNTH_SIM_BUDGET_SECONDS"
CACHE_ENV = "SYNTH_SIM_CACHE_MB"
DEFAULT_BUDGET = 20.0
DEFAULT_CACHE_MB = 64.0
OPTICAL_DEPTH_LABEL = 0.5
"""A pixel is labelled smoke/fire where the volume's optical depth in front of the surface reaches this."""
VOLUME_CLASSES = ("smoke", "fire")
"""Classes drawn as volumes: labelled by optical depth, with no surface of their own in the depth pass."""
FLAME_AGE = 0.45
"""Fire: particles younger than this share of the bake are flame, older ones smoke."""
COHESION = 0.4
"""Liquid: how strongly under-dense cells pull particles together (keeps a splash a puddle, not a spray)."""
MAX_SPEED = 2.0
"""Liquid particle speed cap, m/s."""


def tier_of(complexity: float) -> int:
    """The simulation resolution tier (0 low, 1 mid, 2 high) of a scene complexity."""
    return next(t for bound, t in TIERS if complexity < bound)


@dataclass(frozen=True)
class SimResult:
    """Particles in world coordinates (metres) and how the bake went."""

    points: np.ndarray  # (N, 3) float32
    ages: np.ndarray  # (N,) float32, 0 (just emitted) .. 1 (emitted at the first step)
    radius: float  # particle radius, metres
    solver: str
    steps: int
    steps_done: int
    cut: bool
    seconds: float

    @property
    def nbytes(self) -> int:
        return int(self.points.nbytes + self.ages.nbytes)

    def report(self, *, cache_hit: bool) -> dict[str, Any]:
        """The sample metadata's ``simulation`` entry."""
        return {"solver": self.solver, "steps": self.steps, "stepsDone": self.steps_done, "cut": self.cut,
                "seconds": round(self.seconds, 4), "cacheHit": cache_hit, "particles": len(self.points)}


# --------------------------------------------------------------------------- grid helpers


def _cic_weights(g: np.ndarray, shape: tuple[int, ...]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Flat indices and weights of the 8 cells around each grid-space point (clamped)."""
    g = np.clip(g, 0.0, np.asarray(shape, dtype=np.float64) - 1.000001)
    i0 = np.floor(g).astype(np.int64)
    f = g - i0
    idx, wts = [], []
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                ix = np.minimum(i0[:, 0] + dx, shape[0] - 1)
                iy = np.minimum(i0[:, 1] + dy, shape[1] - 1)
                iz = np.minimum(i0[:, 2] + dz, shape[2] - 1)
                w = (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1]) * (f[:, 2] if dz else 1 - f[:, 2])
                idx.append((ix * shape[1] + iy) * shape[2] + iz)
                wts.append(w)
    return idx, wts


Weights = tuple[list[np.ndarray], list[np.ndarray]]


def _splat(g: np.ndarray | Weights, shape: tuple[int, int, int], values: np.ndarray | None = None) -> np.ndarray:
    idx, wts = _cic_weights(g, shape) if isinstance(g, np.ndarray) else g
    out = np.zeros(int(np.prod(shape)))
    for i, w in zip(idx, wts, strict=True):
        out += np.bincount(i, weights=w if values is None else w * values, minlength=out.size)
    return out.reshape(shape)


def _gather(field: np.ndarray, g: np.ndarray | Weights) -> np.ndarray:
    idx, wts = _cic_weights(g, field.shape) if isinstance(g, np.ndarray) else g
    flat = field.ravel()
    return sum((flat[i] * w for i, w in zip(idx, wts, strict=True)), np.zeros(len(idx[0])))


# --------------------------------------------------------------------------- liquid


def _liquid(sim: Simulation, deadline: float) -> tuple[np.ndarray, np.ndarray, float, int]:
    rng = np.random.default_rng(sim.seed)
    n = LIQUID_PARTICLES[sim.tier]
    steps = STEPS["liquid"]
    cx, cy, r_in, floor, rim = sim.container if sim.container else (*sim.origin[:2], 0.0, sim.origin[2], sim.origin[2])
    wall = 0.12 * r_in if r_in > 0 else 0.0
    ground = sim.origin[2] if sim.container is None else sim.ground
    volume = sim.volume
    spacing = (volume / n) ** (1 / 3)
    rad = 0.5 * spacing
    dt = 1 / 90
    g = np.array([0.0, 0.0, -9.81])
    emit_steps = max(1, int(steps * 0.55)) if sim.scenario in ("pour", "fill") else 1
    birth = np.minimum(np.arange(n) * emit_steps // n, emit_steps - 1)
    if sim.scenario == "splash":  # a ball of liquid falling onto the ground
        ball = (3 * volume / (4 * math.pi)) ** (1 / 3)
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        start = np.array([cx, cy, ground + ball + sim.size[2] * 0.35]) + d * ball * rng.random((n, 1)) ** (1 / 3)
        vel0 = np.tile([0.0, 0.0, -1.2], (n, 1)) + rng.normal(scale=0.05, size=(n, 3))
    else:  # a stream from a spout above the rim (fill: straight down; pour: an arc from the side)
        stream = 0.45 * r_in
        a = rng.uniform(0, 2 * math.pi, n)
        rr = stream * np.sqrt(rng.random(n))
        off = np.stack([rr * np.cos(a), rr * np.sin(a), np.zeros(n)], axis=1)
        if sim.scenario == "fill":
            spout = np.array([cx, cy, rim + 0.6 * r_in])
            v = np.array([0.0, 0.0, -1.2])
        else:
            ang = sim.angle
            side = np.array([math.cos(ang), math.sin(ang), 0.0])
            spout = np.array([cx, cy, rim + 1.2 * r_in]) + side * 0.7 * r_in
            v = -side * 0.25 + np.array([0.0, 0.0, -0.3])
        start = spout + off - v * dt * rng.random((n, 1)) * 2  # a column one step long, not a disk
        vel0 = np.tile(v, (n, 1)) + rng.normal(scale=0.02, size=(n, 3))
    x = start.copy()
    vel = vel0.copy()
    lo = np.array([cx - sim.size[0] / 2, cy - sim.size[1] / 2, ground]) - 2 * spacing
    cells = np.maximum(np.ceil((np.asarray(sim.size) + 4 * spacing) / spacing).astype(int), 2)
    shape = (int(cells[0]), int(cells[1]), int(cells[2]))
    centres = [lo[i] + (np.arange(shape[i]) + 0.5) * spacing for i in range(3)]
    cxg, cyg, czg = np.meshgrid(*centres, indexing="ij")
    solid = czg < ground  # walls count as full cells: the density constraint pushes particles off them
    if r_in > 0:
        dd = np.hypot(cxg - cx, cyg - cy)
        solid |= (czg < rim) & (((dd < r_in) & (czg < floor)) | ((dd >= r_in) & (dd < r_in + wall)))
    solid_rho = solid * 1.5
    done = 0
    for step in range(steps):
        if time.perf_counter() > deadline:
            break
        live = birth <= step
        prev = x.copy()
        vel[live] += g * dt
        x[live] += vel[live] * dt
        for _ in range(3):  # density constraint on the grid: push particles out of crowded cells
            gp = _cic_weights((x[live] - lo) / spacing, shape)  # shared by the splat and the gathers
            rho = _splat(gp, shape) + solid_rho
            press = np.maximum(rho - 1.0, -COHESION)  # below rest density: a pull (surface tension)
            grads = np.gradient(press)
            push = np.stack([_gather(gr, gp) for gr in grads], axis=1)
            x[live] -= 0.5 * spacing * np.clip(push, -1.0, 1.0)
            x[live] += rng.normal(scale=1e-4 * spacing, size=(int(live.sum()), 3))
            x = _collide(x, prev, live, cx, cy, r_in, wall, floor, rim, ground, rad)
        v = (x[live] - prev[live]) / dt * 0.995
        speed = np.linalg.norm(v, axis=1, keepdims=True)
        v *= np.minimum(1.0, MAX_SPEED / np.maximum(speed, 1e-9))  # constraint kicks do not launch a spray
        gp = _cic_weights((x[live] - lo) / spacing, shape)  # viscosity: blend towards the grid's mean velocity (keeps the liquid together)
        rho = np.maximum(_splat(gp, shape), 1e-6)
        mean = np.stack([_gather(_splat(gp, shape, v[:, i]) / rho, gp) for i in range(3)], axis=1)
        v = 0.6 * v + 0.4 * mean
        resting = x[live, 2] <= ground + rad + 0.75 * spacing  # friction on the table
        v[resting, :2] *= 0.6
        vel[live] = v
        x[~live] = start[~live]
        done = step + 1
    ages = (1.0 - birth / max(steps, 1)).astype(np.float32)
    return x.astype(np.float32), ages, float(rad), done


def _collide(x: np.ndarray, prev: np.ndarray, live: np.ndarray, cx: float, cy: float, r_in: float, wall: float,
             floor: float, rim: float, ground: float, rad: float) -> np.ndarray:
    """Keep particles inside the glass they are in, outside the glass they are not in, above the ground."""
    x = x.copy()
    x[:, 2] = np.where(live, np.maximum(x[:, 2], ground + rad), x[:, 2])
    if r_in <= 0:
        return x
    dx, dy = x[:, 0] - cx, x[:, 1] - cy
    d = np.hypot(dx, dy) + 1e-12
    pd = np.hypot(prev[:, 0] - cx, prev[:, 1] - cy)
    below = x[:, 2] < rim
    inside = live & below & (pd < r_in + wall / 2) & (prev[:, 2] < rim + rad)
    entering = live & below & ~inside & (d < r_in) & (prev[:, 2] >= rim)  # fell in over the rim
    inside |= entering
    lim = r_in - rad
    k = inside & (d > lim)
    x[k, 0] = cx + dx[k] / d[k] * lim
    x[k, 1] = cy + dy[k] / d[k] * lim
    x[inside, 2] = np.maximum(x[inside, 2], floor + rad)
    out = live & below & ~inside & (d < r_in + wall + rad)
    x[out, 0] = cx + dx[out] / d[out] * (r_in + wall + rad)
    x[out, 1] = cy + dy[out] / d[out] * (r_in + wall + rad)
    return x


# --------------------------------------------------------------------------- smoke and fire


def _project(u: list[np.ndarray], iters: int = 16) -> list[np.ndarray]:
    """Make the velocity divergence-free (Jacobi pressure solve, closed walls)."""
    div = (np.gradient(u[0], axis=0) + np.gradient(u[1], axis=1) + np.gradient(u[2], axis=2))
    p = np.zeros_like(div)
    for _ in range(iters):
        pp = np.pad(p, 1, mode="edge")
        p = (pp[2:, 1:-1, 1:-1] + pp[:-2, 1:-1, 1:-1] + pp[1:-1, 2:, 1:-1] + pp[1:-1, :-2, 1:-1]
             + pp[1:-1, 1:-1, 2:] + pp[1:-1, 1:-1, :-2] - div) / 6
    gp = np.gradient(p)
    out = [u[i] - gp[i] for i in range(3)]
    for i in range(3):  # no flow through the walls
        sl: list[Any] = [slice(None)] * 3
        sl[i] = 0
        out[i][tuple(sl)] = 0.0
        sl[i] = -1
        out[i][tuple(sl)] = 0.0
    return out


def _plume(sim: Simulation, deadline: float) -> tuple[np.ndarray, np.ndarray, float, int]:
    rng = np.random.default_rng(sim.seed)
    nx = SMOKE_GRID[sim.tier]
    nz = int(nx * 1.5)
    shape = (nx, nx, nz)
    cell = sim.size[0] / nx
    steps = STEPS[sim.kind]
    dt_cells = 0.6  # cells per unit velocity per step
    n = SMOKE_PARTICLES[sim.tier]
    per = math.ceil(n / steps)
    birth = np.minimum(np.arange(n) // per, steps - 1)
    ii, jj, kk = np.meshgrid(*(np.arange(s, dtype=np.float64) for s in shape), indexing="ij")
    grid = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1)
    src_r = max(1.5, nx * sim.source)
    c0 = (nx - 1) / 2
    source = ((ii - c0) ** 2 + (jj - c0) ** 2 <= src_r**2) & (kk <= 1)
    u = [np.zeros(shape), np.zeros(shape), np.zeros(shape)]
    temp = np.zeros(shape)
    a = rng.uniform(0, 2 * math.pi, n)
    rr = src_r * np.sqrt(rng.random(n))
    start = np.stack([c0 + rr * np.cos(a), c0 + rr * np.sin(a), rng.uniform(0.5, 1.5, n)], axis=1)
    pos = start.copy()
    wind = np.array([math.cos(sim.angle), math.sin(sim.angle)]) * sim.wind
    done = 0
    for step in range(steps):
        if time.perf_counter() > deadline:
            break
        temp[source] = 1.0
        u[2] = u[2] + 0.35 * temp - 0.02 * u[2]
        swirl = rng.normal(scale=0.25, size=(2, *shape[:2], 1)) * (temp > 0.05)
        u[0] = u[0] + swirl[0] + wind[0] * temp
        u[1] = u[1] + swirl[1] + wind[1] * temp
        back = _cic_weights(grid - dt_cells * np.stack([c.ravel() for c in u], axis=1), shape)
        u = [_gather(c, back).reshape(shape) for c in u]  # semi-Lagrangian advection
        temp = _gather(temp, back).reshape(shape) * 0.97
        u = _project(u)
        live = birth <= step
        g = pos[live]
        wg = _cic_weights(g, shape)
        v = np.stack([_gather(c, wg) for c in u], axis=1)
        pos[live] = np.clip(g + dt_cells * v, 0.0, np.asarray(shape, dtype=np.float64) - 1.0)
        done = step + 1
    origin = np.array([sim.origin[0] - sim.size[0] / 2, sim.origin[1] - sim.size[1] / 2, sim.origin[2]])
    world = origin + (pos + 0.5) * cell
    ages = (1.0 - birth / max(steps, 1)).astype(np.float32)
    if done < steps:  # particles never emitted stay at the source: drop them from the picture
        ages = np.where(birth < done, ages, -1.0).astype(np.float32)
    return world.astype(np.float32), ages, float(cell * 0.9), done


# --------------------------------------------------------------------------- bake and cache


def budget_seconds() -> float:
    """Per-bake time budget (``SYNTH_SIM_BUDGET_SECONDS``, default 20 s)."""
    try:
        return max(float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET)), 0.0)
    except ValueError:
        return DEFAULT_BUDGET


def bake(sim: Simulation, *, budget: float | None = None) -> SimResult:
    """Run the solver of ``sim`` (no cache); stop stepping once ``budget`` seconds have passed."""
    limit = budget_seconds() if budget is None else budget
    t0 = time.perf_counter()
    if sim.kind == "liquid":
        pts, ages, rad, done = _liquid(sim, t0 + limit)
        solver = "pbf-grid"
        steps = STEPS["liquid"]
    else:
        pts, ages, rad, done = _plume(sim, t0 + limit)
        solver = "stable-fluids"
        steps = STEPS[sim.kind]
    return SimResult(points=pts, ages=ages, radius=rad, solver=solver, steps=steps, steps_done=done,
                     cut=done < steps, seconds=time.perf_counter() - t0)


class SimCache:
    """Finished (uncut) bakes by their parameters, least recently used first out past ``cap_bytes``."""

    def __init__(self, cap_bytes: int) -> None:
        self.cap_bytes = cap_bytes
        self._items: OrderedDict[Simulation, SimResult] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, sim: Simulation, *, budget: float | None = None) -> tuple[SimResult, bool]:
        """(result, cache hit). A cut bake is returned but not cached (more time may finish it)."""
        key = sim.cache_key()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return hit, True
        res = bake(sim, budget=budget)
        with self._lock:
            self.misses += 1
            if not res.cut and res.nbytes <= self.cap_bytes:
                self._items[key] = res
                while self.nbytes > self.cap_bytes:
                    self._items.popitem(last=False)
        return res, False


_CACHE: SimCache | None = None


def worker_cache() -> SimCache:
    """The worker's simulation cache (``SYNTH_SIM_CACHE_MB``, default 64 MB)."""
    global _CACHE
    if _CACHE is None:
        try:
            mb = float(os.environ.get(CACHE_ENV, DEFAULT_CACHE_MB))
        except ValueError:
            mb = DEFAULT_CACHE_MB
        _CACHE = SimCache(int(max(mb, 0.0) * 2**20))
    return _CACHE


def particles_for(sim: Simulation, res: SimResult) -> np.ndarray:
    """The particles an object draws: fire splits flame (young) from smoke (old)."""
    keep = res.ages >= 0
    if sim.kind == "fire" and sim.part == "flame":
        keep &= res.ages < FLAME_AGE
    elif sim.kind == "fire" and sim.part == "smoke":
        keep &= res.ages >= FLAME_AGE
    return np.asarray(res.points[keep])


# --------------------------------------------------------------------------- labels of volumes


def occupancy(points: np.ndarray, radius: float, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """(grid of 0/1 floats, its world origin): cells within ``radius`` of a particle (the drawn volume)."""
    lo = points.min(axis=0) - radius - cell
    hi = points.max(axis=0) + radius + cell
    shape = np.maximum(np.ceil((hi - lo) / cell).astype(int), 1)
    occ = np.zeros(tuple(int(s) for s in shape), dtype=np.float32)
    k = math.ceil(radius / cell)
    rng_ = np.arange(-k, k + 1)
    offs = np.stack(np.meshgrid(rng_, rng_, rng_, indexing="ij"), axis=-1).reshape(-1, 3)
    offs = offs[np.linalg.norm(offs, axis=1) * cell <= radius + 0.5 * cell]
    base = np.floor((points - lo) / cell).astype(np.int64)
    for o in offs:
        c = np.clip(base + o, 0, shape - 1)
        occ[c[:, 0], c[:, 1], c[:, 2]] = 1.0
    return occ, lo


def optical_depth(occ: np.ndarray, lo: np.ndarray, cell: float, density: float, k: np.ndarray, e: np.ndarray,
                  depth: np.ndarray, samples: int = 48) -> np.ndarray:
    """(H, W) optical depth of a uniform-density volume in front of each pixel's first surface.

    ``k``/``e``: OpenCV intrinsics and world-to-camera extrinsics; ``depth``: planar depth of the
    render (>= 1e9 where nothing was hit).
    """
    h, w = depth.shape
    hi = lo + np.asarray(occ.shape) * cell
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    zc = corners @ e[:3, :3].T + e[:3, 3]
    z0, z1 = max(float(zc[:, 2].min()), 1e-3), float(zc[:, 2].max())
    tau = np.zeros((h, w), dtype=np.float64)
    if z1 <= z0:
        return tau
    vv, uu = np.mgrid[0:h, 0:w]
    dirs = np.stack([(uu + 0.5 - k[0, 2]) / k[0, 0], (vv + 0.5 - k[1, 2]) / k[1, 1], np.ones((h, w))], axis=-1)
    step_len = np.linalg.norm(dirs, axis=-1)
    rot_t = e[:3, :3].T
    dz = (z1 - z0) / samples
    for s in range(samples):
        z = z0 + (s + 0.5) * dz
        cam = dirs * z - e[:3, 3]
        world = cam @ rot_t.T
        idx = np.floor((world - lo) / cell).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.asarray(occ.shape)), axis=-1) & (z < depth)
        idx = np.where(ok[..., None], idx, 0)
        tau += np.where(ok, occ[idx[..., 0], idx[..., 1], idx[..., 2]], 0.0) * step_len * dz * density
    return tau


def volume_mask(points: np.ndarray, radius: float, density: float, k: np.ndarray, e: np.ndarray,
                depth: np.ndarray) -> np.ndarray:
    """Pixels whose optical depth through the particle volume reaches :data:`OPTICAL_DEPTH_LABEL`."""
    if len(points) == 0:
        return np.zeros(depth.shape, dtype=bool)
    cell = radius / 2
    occ, lo = occupancy(points, radius, cell)
    return optical_depth(occ, lo, cell, density, k, e, depth) >= OPTICAL_DEPTH_LABEL
