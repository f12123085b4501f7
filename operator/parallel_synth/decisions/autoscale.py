"""The autoscaler's hand-over with the dataset decision: typed status in, typed status out.

:mod:`~parallel_synth.decisions.scaling` is the autoscaler core (sizing, hysteresis, capacity,
distribution) over plain inputs. This module builds those inputs from what the dataset decision
aggregated (its counters and the typed RenderBatch statuses), restores the state the last tick
kept in ``status.autoscaler``, and turns a :class:`~parallel_synth.decisions.scaling.Decision`
back into the typed status parts it owns: ``workers``, ``cost``, ``capacityMode``,
``samplesPerDay``, ``eta`` and ``autoscaler``. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from parallel_synth.decisions.cost import GpuTime, budget_state, cost_report
from parallel_synth.decisions.effects import Event
from parallel_synth.decisions.scaling import BatchView, Decision, Inputs, ScalerState, decide
from parallel_synth.decisions.throughput import (
    SECONDS_PER_DAY,
    Observation,
    RateWindow,
    measure,
    window_from_status,
    window_to_status,
)
from parallel_synth.settings import ScalingSettings
from synth_contract import multiview, ranges
from synth_contract.api import (
    AutoscalerStatus,
    Condition,
    CostStatus,
    RenderBatchSpec,
    RenderBatchStatus,
    SynthDatasetSpec,
)
from synth_contract.times import format_time


@dataclass(frozen=True)
class Totals:
    """The dataset's counters the autoscaler reads (aggregated by the dataset decision)."""

    samples_completed: int = 0
    samples_failed: int = 0
    gpu_seconds: float = 0.0
    spot_gpu_seconds: float = 0.0
    settled_gpu_seconds: float = 0.0
    """GPU time behind settled shards: folded batches' plus each live batch's settled time."""
    preemptions: int = 0
    budget_was_exceeded: bool = False
    """The ``BudgetExceeded`` condition was True after the last tick (the gate's hysteresis)."""


def batch_view(name: str, spec: RenderBatchSpec, status: RenderBatchStatus) -> BatchView:
    """The autoscaler's view of one live RenderBatch."""
    failed = ranges.count(ranges.parse(status.failed_shards))
    running = status.active
    return BatchView(
        name=name,
        remaining=max(0, spec.shard_count - status.shards_done - failed),
        parallelism=spec.parallelism,
        capacity=spec.capacity,
        established=min(running, status.established),
        running=running,
        pending=max(0, status.pending - status.unschedulable),
        unschedulable=status.unschedulable,
    )


def settled_gpu_seconds(status: RenderBatchStatus) -> float:
    """GPU time behind a batch's settled shards: ``gpuSecondsSettled`` when the batch reports it,
    else the GPU time of its finished pods (biased low during preemption storms)."""
    return status.gpu_seconds_settled if status.gpu_seconds_settled is not None else status.gpu_seconds_finished


def state_from_status(data: AutoscalerStatus) -> ScalerState:
    """The state kept in ``status.autoscaler``; malformed points are skipped."""

    def pairs(items: list[list[float]]) -> tuple[tuple[float, int], ...]:
        out = []
        for item in items:
            try:
                t, n = item
                out.append((float(t), int(n)))
            except (TypeError, ValueError):
                continue
        return tuple(sorted(out))

    return ScalerState(
        desired=data.desired,
        last_change=data.last_change,
        recommendations=pairs(data.recommendations),
        capacity_mode=data.capacity_mode,
        mode_since=data.mode_since,
        preemption_marks=pairs(data.preemption_marks),
    )


def autoscale(
    spec: SynthDatasetSpec,
    totals: Totals,
    batches: Sequence[BatchView],
    previous: AutoscalerStatus,
    *,
    now: datetime,
    settings: ScalingSettings,
    window: RateWindow | None = None,
    state: ScalerState | None = None,
) -> Decision:
    """One autoscaler tick over the dataset's counters and its live batches.

    ``previous`` is ``status.autoscaler`` as the last tick left it; ``window`` and ``state``, when
    given, replace what it holds (a caller that keeps them in memory skips the round trip).
    """
    if state is None:
        state = state_from_status(previous)
    win = window if window is not None else window_from_status(previous.window)
    ts = now.timestamp()
    current = Observation(ts, totals.samples_completed, totals.settled_gpu_seconds, totals.gpu_seconds)
    win = win.observe(current)
    thr = measure(
        win,
        current=current,
        prior_gpu_seconds_per_sample=multiview.estimated_gpu_seconds_per_sample(spec),  # all views
        gpus_per_worker=spec.node_pool.gpus_per_worker,
    )
    spot_gpu = min(totals.gpu_seconds, totals.spot_gpu_seconds)
    report = cost_report(
        spec,
        GpuTime(spot=spot_gpu, on_demand=totals.gpu_seconds - spot_gpu),
        completed_samples=totals.samples_completed,
        failed_samples=totals.samples_failed,
        gpu_seconds_per_sample=SECONDS_PER_DAY * max(1, spec.node_pool.gpus_per_worker) / thr.per_worker_per_day,
        capacity=state.capacity_mode,
    )
    inputs = Inputs(
        remaining_samples=max(0, spec.samples - totals.samples_completed - totals.samples_failed),
        batches=batches,
        throughput=thr,
        cost=report,
        budget=budget_state(spec, report, was_exceeded=totals.budget_was_exceeded),
        preemptions_total=totals.preemptions,
    )
    return replace(decide(spec, inputs, state, now=ts, settings=settings), window=win)


def eta_text(decision: Decision, *, now: datetime) -> str | None:
    """``status.eta``: when the remaining samples are done at the current rate (None: unknown, or
    after the year 9999 that a timestamp can hold: 1e11 samples at a few a day must not stop the reconcile)."""
    if decision.eta_seconds is None or not math.isfinite(decision.eta_seconds):
        return None
    try:
        return format_time(datetime.fromtimestamp(now.timestamp() + decision.eta_seconds, tz=UTC))
    except (OverflowError, ValueError, OSError):  # "year 49572 is out of range"
        return None


def cost_status(decision: Decision) -> CostStatus:
    """``status.cost`` (rounded for humans)."""
    c = decision.cost
    return CostStatus(
        gpu_hours=round(c.gpu_hours, 3),
        spot_gpu_hours=round(c.spot_gpu_hours, 3),
        on_demand_gpu_hours=round(c.on_demand_gpu_hours, 3),
        dollars=round(c.dollars, 2),
        dollars_per1k_samples=round(c.dollars_per_1k_samples, 4),
        projected_dollars=round(c.projected_dollars, 2),
    )


def autoscaler_status(decision: Decision) -> AutoscalerStatus:
    """``status.autoscaler``: the state the next tick needs (bounded: a few hundred numbers),
    so a restarted operator keeps its measurements and its hysteresis; and why it chose."""
    state = decision.state
    return AutoscalerStatus(
        desired=state.desired,
        last_change=state.last_change,
        recommendations=[[round(t, 1), n] for t, n in state.recommendations],
        capacity_mode=state.capacity_mode,
        mode_since=state.mode_since,
        preemption_marks=[[round(t, 1), n] for t, n in state.preemption_marks],
        reason=decision.reason,
        recommended=decision.recommended,
        rate_measured=decision.throughput.measured,
        window=window_to_status(decision.window) if decision.window else [],
    )


def transition_events(before: Sequence[Condition], decision: Decision) -> list[Event]:
    """Warnings for the autoscaler's conditions that just turned: ``BudgetExceeded``,
    ``SpotFallback`` (True) and ``PodsScheduled`` (False)."""
    was = {c.type: c.status for c in before}
    out = []
    for c in decision.conditions:
        turned = c.status == ("False" if c.type == "PodsScheduled" else "True")
        if turned and was.get(c.type) != c.status:
            out.append(Event("Warning", c.reason, c.message))
    return out
