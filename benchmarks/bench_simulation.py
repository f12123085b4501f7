"""Simulation benchmark: bake seconds per sample by tier, cache hit rate, share of bakes cut by the budget.

Prints its figures; it is not a test. Renders real ``fluids`` and ``effects`` samples (the
simulated kinds only: pour/fill/splash liquids, smoke and fire plumes) with one warm renderer, as a
worker does, twice over: the first pass bakes every simulation, the second repeats the same samples
(a retried shard or ``synthctl render-sample``) and should be served by the worker's cache.

    python benchmarks/bench_simulation.py                      # 12 samples, 64x64, 4 spp
    python benchmarks/bench_simulation.py --samples 24 --budget 0.2   # a tight budget: bakes get cut

Also bakes every tier of every solver directly (no render), 3 seeds each, for the per-tier cost
at resolutions the complexity of the built-in scenes rarely reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import defaultdict
from typing import Any

from synth_contract.api import SynthDatasetSpec
from synth_render import simulation
from synth_render.scene import Simulation


def _spec(args: argparse.Namespace) -> SynthDatasetSpec:
    return SynthDatasetSpec.model_validate({
        "samples": 400, "seed": 5, "shardSize": 400,
        "render": {"device": "cpu", "resolutions": [{"width": args.size, "height": args.size}],
                   "samples": {"min": args.spp, "max": args.spp}, "denoise": False,
                   "passes": ["rgb", "depth", "segmentation"]},
        "quality": {"minScore": 0.0, "maxRerenders": 0, "maxNoiseSigma": 1.0},
        "categories": [{"name": "fluids", "weight": 1}, {"name": "effects", "weight": 1}],
        "output": {"uri": "file:///tmp/unused"}, "image": "renderer:bench",
    })


def _simulated_plans(spec: SynthDatasetSpec, count: int) -> list[Any]:
    from synth_render.sample import plan_sample, scene_for

    plans = []
    for index in range(spec.samples):
        plan = plan_sample(spec, index)
        if any(o.simulation is not None for o in scene_for(spec, plan)[0].objects):
            plans.append(plan)
        if len(plans) == count:
            break
    return plans


def _direct() -> list[dict[str, Any]]:
    rows = []
    for kind in ("liquid", "smoke", "fire"):
        for tier in (0, 1, 2):
            secs = []
            for seed in range(3):
                if kind == "liquid":
                    sim = Simulation(kind="liquid", scenario="fill", seed=seed, tier=tier, origin=(0.0, 0.0, 0.0),
                                     size=(0.3, 0.3, 0.2), container=(0.0, 0.0, 0.045, 0.012, 0.13),
                                     volume=3.1416 * 0.045**2 * 0.06)
                else:
                    sim = Simulation(kind=kind, scenario="plume", seed=seed, tier=tier, origin=(0.0, 0.0, 0.0),
                                     size=(1.2, 1.2, 1.8), wind=0.04, density=8.0)
                secs.append(simulation.bake(sim).seconds)
            rows.append({"kind": kind, "tier": tier, "bakeSecondsMedian": round(statistics.median(secs), 3),
                         "bakeSecondsMax": round(max(secs), 3)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=12)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--spp", type=int, default=4)
    ap.add_argument("--budget", type=float, default=None, help="seconds per bake (SYNTH_SIM_BUDGET_SECONDS)")
    ap.add_argument("--no-render", action="store_true", help="only the direct per-tier bakes")
    args = ap.parse_args()
    if args.budget is not None:
        os.environ[simulation.BUDGET_ENV] = str(args.budget)
    result: dict[str, Any] = {"budgetSeconds": simulation.budget_seconds(), "direct": _direct()}
    if not args.no_render:
        from synth_render.blender.renderer import BlenderRenderer
        from synth_render.sample import render_sample

        spec = _spec(args)
        plans = _simulated_plans(spec, args.samples)
        renderer = BlenderRenderer(device="cpu")
        passes = []
        for name in ("first", "repeat"):
            by_tier: dict[int, list[float]] = defaultdict(list)
            hits = cut = 0
            t0 = time.perf_counter()
            for plan in plans:
                s = render_sample(spec, plan, renderer, dataset="bench")
                sim = s.simulation or {}
                by_tier[int(sim.get("tier", -1))].append(float(sim.get("seconds", 0.0)))
                hits += bool(sim.get("cacheHit"))
                cut += bool(sim.get("cut"))
            passes.append({
                "pass": name, "samples": len(plans), "wallSeconds": round(time.perf_counter() - t0, 2),
                "bakeSecondsPerSampleByTier": {str(t): round(statistics.mean(v), 3) for t, v in sorted(by_tier.items())},
                "samplesByTier": {str(t): len(v) for t, v in sorted(by_tier.items())},
                "cacheHitRate": round(hits / max(len(plans), 1), 3),
                "cutShare": round(cut / max(len(plans), 1), 3),
            })
        renderer.close()
        cache = simulation.worker_cache()
        result["render"] = passes
        result["cache"] = {"entries": len(cache), "bytes": cache.nbytes, "capBytes": cache.cap_bytes}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
