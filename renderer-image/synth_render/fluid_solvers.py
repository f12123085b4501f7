"""The solvers behind ``synth_render.simulation``: a particle liquid and a buoyant smoke/fire plume.

* **Liquid** (``liquid``, solver ``pbf-grid``): position-based particles (gravity, a grid density
  constraint that keeps them about one spacing apart, collisions with a glass and the ground) for
  ``pour``, ``fill`` and ``splash`` scenarios.
* **Smoke / fire** (``plume``, solver ``stable-fluids``): stable fluids (Stam) on a small grid
  driven by buoyancy of an advected temperature, with marker particles emitted at the source and
  carried by the velocity field.

Both are seeded and take a deadline: past it they stop stepping and say how many steps they did.
Particles and grid share cloud-in-cell weights (``_cic_weights``). Pure numpy.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from synth_render.scene import Simulation

LIQUID_PARTICLES = (600, 1200, 2400)
"""Liquid particles per tier."""
SMOKE_GRID = (12, 16, 20)
"""Smoke grid cells along the domain's width per tier (the height is 1.5 times that)."""
SMOKE_PARTICLES = (1600, 2400, 4000)
STEPS = {"liquid": 48, "smoke": 40, "fire": 40}
"""Solver steps per bake (fixed: the sim is a function of its parameters only)."""
COHESION = 0.4
"""Liquid: how strongly under-dense cells pull particles together (keeps a splash a puddle, not a spray)."""
MAX_SPEED = 2.0
"""Liquid particle speed cap, m/s."""


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


def liquid(sim: Simulation, deadline: float) -> tuple[np.ndarray, np.ndarray, float, int]:
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


def plume(sim: Simulation, deadline: float) -> tuple[np.ndarray, np.ndarray, float, int]:
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
