"""Benchmark of the fleet simulator on the reference 500M-sample plan.

The plan: 10M, then 150M, then 340M samples, at targets of 170k, 1.25M and 1.9M samples/day;
up to 75 GPUs (workers.max); 60 GPU-seconds per sample; spot at a 70% discount ($0.30 vs
$1.00 per GPU-hour). Each phase is one SynthDataset (built from examples/phase1-foundation.yaml)
simulated with the real planner and the operator's own decisions (``decide_batch`` for every
RenderBatch: Jobs, retries, preemptions; ``decide_dataset``: window, status, autoscaler, cost);
a phase starts when the previous one ends.

Prints, per phase and in total: simulated days to finish, attained vs target samples/day, the
GPUs each target really needs (target x 60 s / 86400) against the 75 allowed, the cost and $ per
sample, and the wall time of the simulation. It was 18 s (2 cores) while the simulator built batch
status by hand; with ``decide_batch`` run for every batch at every reconcile and hand-over it is
about 70 CPU-seconds.

Run:  python benchmarks/bench_simulate.py [--preemption-rate 0.02] [--tick-hours 6] [--plot plan.png]
The autoscaler tick is coarse (hours) because a 12-year simulated run at the operator's real
15 s interval would take hours; the operator's quick hand-overs between batches are still
simulated at 15 s (see SimConfig.reconcile_seconds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml

from parallel_synth.simulator.fleet import simulate, start_after
from parallel_synth.simulator.model import SimConfig, SimReport
from parallel_synth.simulator.plot import plot
from synth_contract.api import SynthDataset, SynthDatasetSpec

ROOT = Path(__file__).resolve().parent.parent
PHASES: list[tuple[str, int, int, list[str]]] = [
    ("phase1-foundation", 10_000_000, 170_000, ["geometry", "materials", "lighting", "camera"]),
    ("phase2-scenes", 150_000_000, 1_250_000, ["composition", "motion", "environment", "characters"]),
    ("phase3-dynamics", 340_000_000, 1_900_000, ["vehicles", "fluids", "effects", "characters", "motion"]),
]
SECONDS_PER_SAMPLE = 60.0
WORKERS_MAX = 75


def phase_spec(samples: int, target: int, categories: list[str]) -> SynthDatasetSpec:
    """The phase-1 example with the phase's size, target and categories; no budget cap."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "phase1-foundation.yaml").read_text())
    spec = dict(doc["spec"])
    spec.update(
        samples=samples,
        categories=[{"name": c, "weight": 1} for c in categories],
        throughput={"targetPerDay": target},
        workers={"min": 4, "max": WORKERS_MAX},
        pricing={"spotPerGpuHour": 0.30, "onDemandPerGpuHour": 1.00},
        estimates={"gpuSecondsPerSample": SECONDS_PER_SAMPLE, "bytesPerSample": 5_000_000},
    )
    spec.pop("budget", None)
    return SynthDataset.model_validate({**doc, "spec": spec}).spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preemption-rate", type=float, default=0.02, help="spot preemptions per pod-hour")
    ap.add_argument("--tick-hours", type=float, default=6.0, help="autoscaler tick in simulated hours")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, help="write a PNG of the whole plan")
    args = ap.parse_args()

    config = SimConfig(tick_seconds=args.tick_hours * 3600, preemption_rate=args.preemption_rate, seed=args.seed)
    reports: list[SimReport] = []
    wall = time.perf_counter()
    for name, samples, target, cats in PHASES:
        r = simulate(name, phase_spec(samples, target, cats), config)
        reports.append(r)
        config = start_after(config, r)
    wall = time.perf_counter() - wall

    print(f"reference plan: 500M samples, {SECONDS_PER_SAMPLE:.0f} GPU-s/sample, workers.max {WORKERS_MAX}, "
          f"spot $0.30 / on-demand $1.00 per GPU-hour, preemptions {args.preemption_rate:.0%}/pod-hour, "
          f"autoscaler tick {args.tick_hours:g} h")
    print(f"{'phase':<18} {'samples':>12} {'days':>9} {'target/day':>11} {'attained/day':>13} {'ratio':>6} "
          f"{'GPUs needed':>11} {'feasible':>8} {'cost $':>14} {'$/sample':>9}")
    total_days = total_cost = 0.0
    total_samples = 0
    for r in reports:
        needed = r.gpus_for_target or 0.0
        ratio = r.attained_per_day / r.target_per_day if r.target_per_day else 0.0
        print(f"{r.dataset:<18} {r.samples_completed:>12,} {r.elapsed_days:>9,.1f} {r.target_per_day or 0:>11,} "
              f"{r.attained_per_day:>13,.0f} {ratio:>6.1%} {needed:>11,.0f} "
              f"{'yes' if needed <= r.workers_max else 'NO':>8} {r.dollars:>14,.0f} "
              f"{r.dollars / max(1, r.samples_completed):>9.5f}")
        total_days += r.elapsed_days
        total_cost += r.dollars
        total_samples += r.samples_completed
    print(f"{'total':<18} {total_samples:>12,} {total_days:>9,.1f} {'':>11} "
          f"{total_samples / total_days:>13,.0f} {'':>6} {'':>11} {'':>8} {total_cost:>14,.0f} "
          f"{total_cost / total_samples:>9.5f}")
    planned_days = sum(s / t for _, s, t, _ in PHASES)
    print(f"simulated days to finish: {total_days:,.1f} ({total_days / 365.25:.1f} years); "
          f"the plan as written expects {planned_days:,.1f} days")
    for (name, _, target, _), r in zip(PHASES, reports, strict=True):
        needed = target * SECONDS_PER_SAMPLE / 86400
        print(f"  {name}: {target:,}/day x {SECONDS_PER_SAMPLE:.0f} s = {needed:,.0f} GPUs needed; "
              f"{WORKERS_MAX} allowed give at most {WORKERS_MAX * 86400 / SECONDS_PER_SAMPLE:,.0f}/day "
              f"({WORKERS_MAX / needed:.0%} of the target); peak running {r.peak_workers}")
    print("the plan is infeasible as written: every phase's target needs more GPUs than workers.max allows"
          if all((r.gpus_for_target or 0) > r.workers_max for r in reports) else "")
    spot_h = sum(r.spot_gpu_hours for r in reports)
    od_h = sum(r.on_demand_gpu_hours for r in reports)
    lost_h = sum(r.lost_gpu_hours for r in reports)
    print(f"GPU-hours: spot {spot_h:,.0f}, on-demand {od_h:,.0f}, lost to preemptions {lost_h:,.0f} "
          f"({lost_h / max(1.0, spot_h + od_h):.2%}); preemptions {sum(r.preemptions for r in reports):,}")
    print(f"total cost ${total_cost:,.0f} = ${total_cost / total_samples:.5f} per sample "
          f"(${total_cost / total_samples * 1000:.2f} per 1000); all on-demand it would be "
          f"${total_samples * SECONDS_PER_SAMPLE / 3600 * 1.00:,.0f}")
    events = sum(r.events for r in reports)
    ticks = sum(r.ticks for r in reports)
    handovers = sum(r.handovers for r in reports)
    print(f"simulation wall time: {wall:.1f} s for {events:,} pod events, {ticks:,} operator reconciles and "
          f"{handovers:,} batch hand-overs")
    if args.plot:
        plot(reports, args.plot, title="reference 500M-sample plan (75 GPUs max)")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
