"""Project-owned deterministic simulations: a particle liquid and a buoyant smoke/fire plume.

Blender's Mantaflow cannot bake headless in the bpy wheel we ship (``'LevelsetGrid' object has
no attribute 'setConst'`` then an abort, princeton-vl/infinigen#318), so liquids and smoke are
simulated here in numpy and only drawn by the Blender layer (``synth_render.blender.simulation``).

* **Liquid**: position-based particles for ``pour``, ``fill`` and ``splash`` scenarios.
* **Smoke / fire**: stable fluids with marker particles carried by the velocity field; young
  particles are flame, older ones smoke.

The solvers are in ``synth_render.fluid_solvers``, the labels of smoke/fire pixels in
``synth_render.volume_labels``; this module picks the tier, bakes within a time budget and caches.

Everything is seeded: the same :class:`scene.Simulation` gives the same particles. A solver that
runs past its time budget stops stepping (``cut``); results are cached per worker (keyed by the
parameters, capped in bytes). No Blender here.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_render import fluid_solvers
from synth_render.scene import Simulation

TIERS = ((0.1, 0), (0.2, 1), (2.0, 2))
"""(complexity upper bound, tier): the scene's complexity picks a simulation resolution tier (the
built-in fluids/effects scenes span complexity ~0.04..0.25, so all three tiers occur)."""
BUDGET_ENV = "SYNTH_SIM_BUDGET_SECONDS"
CACHE_ENV = "SYNTH_SIM_CACHE_MB"
DEFAULT_BUDGET = 20.0
DEFAULT_CACHE_MB = 64.0
VOLUME_CLASSES = ("smoke", "fire")
"""Classes drawn as volumes: labelled by optical depth, with no surface of their own in the depth pass."""
FLAME_AGE = 0.45
"""Fire: particles younger than this share of the bake are flame, older ones smoke."""


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
        pts, ages, rad, done = fluid_solvers.liquid(sim, t0 + limit)
        solver = "pbf-grid"
        steps = fluid_solvers.STEPS["liquid"]
    else:
        pts, ages, rad, done = fluid_solvers.plume(sim, t0 + limit)
        solver = "stable-fluids"
        steps = fluid_solvers.STEPS[sim.kind]
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
