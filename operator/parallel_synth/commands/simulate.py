"""``synthctl simulate``: size a run on a simulated fleet before spending money.

Reads a SynthDataset manifest, runs :func:`parallel_synth.simulator.fleet.simulate` (the real
planner and the operator's decisions, ``decide_batch`` and ``decide_dataset``, against simulated
nodes, Kueue, Jobs, preemptions and render times) and prints one line per simulated day, then a
summary; or the whole report as JSON. ``--plot`` writes a PNG.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from parallel_synth.commands.common import FiniteFloat
from parallel_synth.simulator.fleet import simulate as run_simulation
from parallel_synth.simulator.model import DayStats, SimConfig, SimReport
from parallel_synth.simulator.plot import plot

MAX_DAYS = SimConfig.max_days
"""The longest run simulated (the simulator's own safety stop: 100 years)."""
SECONDS_PER_DAY = 86400.0
MIN_TICK_SECONDS = 1.0
"""The finest autoscaler tick (the operator reconciles every 15 s; finer only multiplies the ticks)."""
MAX_PREEMPTION_RATE = 100.0
"""Preemptions per spot pod per hour: 100 is a pod living 36 s on average, far beyond any storm
(at 3600 the simulation spends minutes on preemption events alone)."""


def _fmt_days(days: float) -> str:
    return f"{days:,.1f} days" + (f" ({days / 365.25:,.1f} years)" if days > 365 else "")


def _summary_lines(r: SimReport) -> list[str]:
    target = r.target_per_day
    lines = [
        f"dataset {r.dataset}: {r.samples_completed:,}/{r.samples_target:,} samples in {_fmt_days(r.elapsed_days)}"
        + (" (finished)" if r.finished else " (stopped by budget)" if r.stopped_by_budget else " (not finished)"),
        f"  throughput: {r.attained_per_day:,.0f} samples/day attained"
        + (f" vs {target:,} target ({r.attained_per_day / target:.0%})" if target else " (no target)"),
    ]
    if r.gpus_for_target is not None:
        feasible = "feasible" if r.gpus_for_target <= r.workers_max else "NOT feasible with workers.max"
        lines.append(
            f"  the target needs {r.gpus_for_target:,.1f} GPUs at the render time; workers.max is "
            f"{r.workers_max} ({feasible}); peak running {r.peak_workers}"
        )
    lines += [
        f"  cost: ${r.dollars:,.2f} (${r.dollars_per_1k_samples:,.3f} per 1000 samples), projected total "
        f"${r.projected_dollars:,.2f}; GPU-hours spot {r.spot_gpu_hours:,.1f}, on-demand {r.on_demand_gpu_hours:,.1f}",
        f"  preemptions {r.preemptions:,}, retries {r.retries:,}, GPU-hours lost to interruptions "
        f"{r.lost_gpu_hours:,.1f}, start-up overhead {r.overhead_gpu_hours:,.1f}",
        f"  shards committed {r.shards_completed:,}/{r.shards_total:,}, failed {r.shards_failed:,}, "
        f"committed twice {r.duplicate_commits}",
    ]
    if r.quota_gpus is not None:
        lines += _quota_lines(r)
    if r.budget_stop_day is not None:
        lines.append(f"  budget stopped new work on day {r.budget_stop_day:,.2f}")
    if len(r.capacity_switches) > 1:
        lines.append("  capacity: " + ", ".join(f"day {d:,.2f} -> {m}" for d, m in r.capacity_switches))
    lines.append(f"  simulated {r.events:,} pod events and {r.ticks:,} autoscaler ticks in {r.wall_seconds:.2f}s")
    return lines


def _quota_lines(r: SimReport) -> list[str]:
    """Issue #17: the rate and ETA a team gets from its Kueue quota.

    The rate is the whole run's (committed samples / elapsed days), compared with what the
    time-averaged quota allows; the ETA projects the quota in effect at the end at the same
    efficiency (start-up and interruptions included).
    """
    ideal = r.quota_per_day or 0.0
    rate = r.samples_completed / r.elapsed_days if r.elapsed_days > 0 else 0.0
    efficiency = rate / ideal if ideal else 0.0
    ahead = (r.quota_final_per_day or 0.0) * efficiency
    left = r.samples_target - r.samples_completed
    eta_days = r.elapsed_days if r.finished else (r.elapsed_days + left / ahead if ahead > 0 else float("inf"))
    when = "".join(f", {g} from day {day:g}" for day, g in r.quota_schedule[:4])
    eta = "never (the quota is 0)" if eta_days == float("inf") else _fmt_days(eta_days)
    return [
        f"  Kueue quota {r.quota_gpus} GPUs{when}: {r.admitted_gpus:,.1f} GPUs admitted on average; the quota allows "
        f"{ideal:,.0f} samples/day at the render time, the run got {rate:,.0f}"
        + (f" ({efficiency:.0%})" if ideal else ""),
        f"  ETA under this quota: {eta}"
        + (" (finished)" if r.finished else f" (projected: {ahead:,.0f} samples/day from now on)")
        + (f"; Kueue evicted {r.kueue_evictions} pod(s): counted as preemptions, resumed from checkpoints"
           if r.kueue_evictions else ""),
    ]


def _day_line(d: DayStats) -> str:
    target = f"{d.samples / d.target_per_day:6.0%}" if d.target_per_day else "     -"
    admitted = f" {d.admitted_gpus:8.1f}/{d.quota_gpus}" if d.quota_gpus is not None else ""
    return (
        f"{d.day:6d} {d.samples:>12,} {d.cumulative:>14,} {d.workers:8.1f} {d.desired:7d} {d.pending:7d} "
        f"{d.dollars:>11,.2f} {d.cumulative_dollars:>14,.2f} {target} {d.capacity_mode}{admitted}"
    )


HEADER = (
    f"{'day':>6} {'samples':>12} {'cumulative':>14} {'workers':>8} {'desired':>7} {'pending':>7} "
    f"{'$ day':>11} {'$ total':>14} {'target':>6} capacity"
)


@click.command("simulate")
@click.argument("manifest", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--days", type=FiniteFloat(min=0, min_open=True, max=MAX_DAYS), default=None, help="Stop after this many simulated days (default: until done).")
@click.option("--preemption-rate", type=FiniteFloat(0, MAX_PREEMPTION_RATE), default=0.0, show_default=True,
              help="Spot preemptions per spot pod per hour (0.2 = a 20%/hour storm).")
@click.option("--gpu-seconds-per-sample", type=FiniteFloat(min=0, min_open=True), default=None,
              help="True render time of a sample on one GPU (default: spec.estimates.gpuSecondsPerSample).")
@click.option("--failure-rate", type=FiniteFloat(0, 1), default=0.0, show_default=True,
              help="Probability that a pod ends with a render error.")
@click.option("--spot-gpus", type=click.IntRange(min=0), default=None, help="Spot GPU capacity (default: workers.max).")
@click.option("--on-demand-gpus", type=click.IntRange(min=0), default=None, help="On-demand GPU capacity (default: workers.max).")
@click.option("--tick", "tick_seconds", type=FiniteFloat(MIN_TICK_SECONDS, SECONDS_PER_DAY), default=300.0, show_default=True,
              help="Autoscaler tick in simulated seconds (coarser is faster for long runs).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation.")
@click.option("--quota", "quota_gpus", type=click.IntRange(min=1), default=None,
              help="Kueue: GPUs the dataset's queue admits at once; prints the rate and ETA this quota gives.")
@click.option("--quota-change", "quota_changes", multiple=True, metavar="DAY:GPUS",
              help="Kueue: the quota becomes GPUS from simulated DAY on (repeatable; needs --quota).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG plot (samples/day vs target, workers, dollars).")
@click.option("--quiet", is_flag=True, help="Only the summary, not one line per day.")
def simulate_cmd(
    manifest: str,
    as_json: bool,
    days: float | None,
    preemption_rate: float,
    gpu_seconds_per_sample: float | None,
    failure_rate: float,
    spot_gpus: int | None,
    on_demand_gpus: int | None,
    tick_seconds: float,
    seed: int,
    quota_gpus: int | None,
    quota_changes: tuple[str, ...],
    plot_path: str | None,
    quiet: bool,
) -> None:
    """Simulate a fleet rendering MANIFEST on a simulated clock.

    Drives the operator's real decisions (Job attempts and retries, status aggregation,
    autoscaler, cost) against simulated GPU nodes, Jobs, spot preemptions and render times, and
    prints per-day samples, workers, cost and attained vs target throughput.

    \b
    Exit codes: 0 simulated; 1 the manifest has problems; 2 wrong usage or unreadable manifest.
    """
    from datetime import UTC, datetime

    from synth_contract.validation import read_manifest, validate_document

    schedule = _quota_schedule(quota_changes, quota_gpus)
    try:
        raw = read_manifest(manifest)
    except Exception as exc:  # unreadable input is a user error, not a crash
        click.echo(f"{manifest}: cannot read manifest: {exc}", err=True)
        sys.exit(2)
    obj, errors = validate_document(raw, now=datetime.now(UTC))
    if obj is None:
        click.echo(f"{manifest}: {len(errors)} problem(s):", err=True)
        for e in errors:
            click.echo(f"  {e}", err=True)
        sys.exit(1)
    never = _never_done(obj.spec, days=days, gpu_seconds=gpu_seconds_per_sample, spot=spot_gpus,
                        on_demand=on_demand_gpus, quota=quota_gpus, schedule=schedule)
    if never:
        click.echo(f"{manifest}: {never}; pass --days to simulate a stretch of it", err=True)
        sys.exit(1)
    config = SimConfig(
        days=days,
        preemption_rate=preemption_rate,
        gpu_seconds_per_sample=gpu_seconds_per_sample,
        failure_rate=failure_rate,
        spot_gpus=spot_gpus,
        on_demand_gpus=on_demand_gpus,
        tick_seconds=tick_seconds,
        seed=seed,
        start=datetime.now(UTC).replace(microsecond=0),
        quota_gpus=quota_gpus,
        quota_schedule=schedule,
    )
    live = not as_json and not quiet
    if live:
        click.echo(HEADER + (f" {'admitted/quota GPUs':>12}" if quota_gpus is not None else ""))
    report = run_simulation(obj.metadata.name, obj.spec, config, progress=(lambda d: click.echo(_day_line(d))) if live else None)
    if plot_path:
        plot([report], plot_path, title=f"synthctl simulate {obj.metadata.name}")
    from synth_contract.planning import index_step  # issue #23: the index step after the last shard

    step = index_step(obj.spec, bytes_per_sample=float(obj.spec.estimates.bytes_per_sample))
    if as_json:
        out: dict[str, Any] = report.summary()
        out["indexStep"] = step.to_json()
        out["days"] = [d.__dict__ for d in report.days]
        out["status"] = {k: v for k, v in report.final_status.items() if k not in ("autoscaler", "folded")}
        click.echo(json.dumps(out, indent=2, default=str))
        return
    for line in _summary_lines(report):
        click.echo(line)
    from parallel_synth.commands.plan import index_step_line

    click.echo(index_step_line(step))
    if plot_path:
        click.echo(f"wrote {plot_path}")


def _quota_schedule(changes: tuple[str, ...], quota: int | None) -> tuple[tuple[float, int], ...]:
    """``DAY:GPUS`` options as (day, GPUs) pairs; a usage error (exit 2) names the bad one."""
    if changes and quota is None:
        raise click.UsageError("--quota-change needs --quota (the quota before the first change)")
    out = []
    for item in changes:
        day, sep, gpus = item.partition(":")
        try:
            pair = (float(day), int(gpus))
        except ValueError:
            pair = (-1.0, -1)
        if not sep or not 0 <= pair[0] <= MAX_DAYS or pair[1] < 0:  # also refuses nan and inf days
            raise click.BadParameter(f"{item!r}: expected DAY:GPUS, e.g. 2:4 (day 0..{MAX_DAYS:g}, GPUs >= 0)",
                                     param_hint="--quota-change")
        out.append(pair)
    return tuple(sorted(out))


def _never_done(spec: Any, *, days: float | None, gpu_seconds: float | None, spot: int | None,
                on_demand: int | None, quota: int | None, schedule: tuple[tuple[float, int], ...]) -> str | None:
    """Why a run until done (no ``--days``) cannot end within the simulator's safety stop, or None.

    Without this the simulation ticks on for ``MAX_DAYS`` simulated days (millions of ticks: a hang
    to the user) when no GPU is ever available or when even every GPU at once needs longer.
    """
    from synth_contract import multiview

    if days is not None:
        return None
    per_worker = max(1, spec.node_pool.gpus_per_worker)
    default = spec.workers.max * per_worker
    gpus = min(spec.workers.max * per_worker,
               (default if spot is None else spot) + (default if on_demand is None else on_demand))
    if quota is not None:
        gpus = min(gpus, schedule[-1][1] if schedule else quota)
    gpus = (gpus // per_worker) * per_worker  # a worker needs all its GPUs at once
    if gpus <= 0:
        return ("no GPUs for a whole worker (--spot-gpus, --on-demand-gpus, --quota and --quota-change "
                "leave none at the end): the dataset never finishes")
    sps = gpu_seconds or multiview.estimated_gpu_seconds_per_sample(spec)
    lower = spec.samples * sps / gpus / SECONDS_PER_DAY
    if not lower <= MAX_DAYS:
        return (f"{spec.samples:,} samples at {sps:g} GPU-seconds each on at most {gpus} GPUs take at least "
                f"{lower:.3g} days, more than the simulator's {MAX_DAYS:g}-day stop")
    return None


simulate = simulate_cmd
"""The click command registered lazily by ``synthctl`` as ``parallel_synth.commands.simulate:simulate``."""
