"""The throughput autoscaler: how many rendering pods, in which batches, on which capacity.

Pure decisions, no I/O, time as an argument. One call, :func:`decide`, takes what the operator
(or the simulator) observed and the previous :class:`ScalerState`, and returns a
:class:`Decision`: the desired worker count, the parallelism of each live RenderBatch, the
capacity type for new pods, the budget gate, the measured throughput and the conditions to show.
The dataset decision (:mod:`~parallel_synth.decisions.autoscale` feeds it typed status) applies it.

Sizing (``desired_workers``)
    ``ceil(targetPerDay / per-worker rate)`` and, with a deadline,
    ``ceil(remaining / (per-worker rate x days left))``, whichever is higher; neither set means
    ``workers.max``. The per-worker rate is measured (:mod:`parallel_synth.decisions.throughput`); before
    any shard commits it is the prior ``86400 / spec.estimates.gpuSecondsPerSample`` samples per
    GPU per day. The result is bounded by ``workers.min``/``workers.max``, by the shards left,
    and by the budget (no more shards in flight than the remaining dollars pay for; none when
    the budget gate is closed).

No flapping (``stabilize``)
    Scale-up applies at once; scale-down only to the highest recommendation of the last
    ``scale_down_stabilization_seconds`` (as the HPA does) and not by less than ``tolerance``
    of the current value; two changes are at least ``min_change_interval_seconds`` apart. Budget stops and a finished dataset bypass all three.

Distribution (``distribute``)
    Water-filling over the live batches (as even as possible, ties to the oldest), batches on
    the current capacity type before the others, never more pods than shards left in a batch.
    Scale-down drains:
    a batch keeps at least its *established* running pods (started more than one tick ago) so
    running shards finish; pods the Job started since the last tick are the ones cut (the Job
    controller deletes the newest pods first). Opening batches is the dataset decision's window
    rule (``dataset.window_size``), not the autoscaler's.

Capacity (``capacity_mode``)
    With ``nodePool.spot`` and ``onDemandFallback``, when spot pods are preempted at more than
    ``fallback_preemptions_per_pod_hour`` over ``preemption_window_seconds`` (and at least
    ``fallback_min_preemptions`` times), new pods go to on-demand; spot is tried again after
    ``spot_retry_seconds``. Not when finishing on on-demand would reach the budget: a slow spot
    run beats one that the budget stops (``SpotKeptForBudget``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC

from parallel_synth.decisions.cost import (
    BudgetState,
    Capacity,
    CostReport,
)
from parallel_synth.decisions.throughput import (
    SECONDS_PER_DAY,
    RateWindow,
    Throughput,
)
from parallel_synth.settings import ScalingSettings
from synth_contract.api import Condition, SynthDatasetSpec


@dataclass(frozen=True)
class BatchView:
    """What the autoscaler needs to know about one live RenderBatch."""

    name: str
    remaining: int
    """Shards neither committed nor failed for good: the most pods this batch can use."""
    parallelism: int
    """Current ``spec.parallelism``."""
    capacity: str = Capacity.SPOT.value
    """``spec.capacity``: spot or on-demand."""
    established: int = 0
    """Running pods started at least one tick ago: protected from scale-down."""
    running: int = 0
    """All running pods (established included)."""
    pending: int = 0
    """Pods waiting to be scheduled or starting, not yet known to be unschedulable."""
    unschedulable: int = 0
    """Pending pods with PodScheduled=False reason Unschedulable (no GPU capacity)."""


@dataclass(frozen=True)
class ScalerState:
    """What the autoscaler remembers between ticks (kept in memory by the caller)."""

    desired: int | None = None
    last_change: float | None = None
    recommendations: tuple[tuple[float, int], ...] = ()
    """Change points ``(t, recommended)`` over the scale-down stabilization window."""
    capacity_mode: str | None = None
    mode_since: float = 0.0
    preemption_marks: tuple[tuple[float, int], ...] = ()
    """Change points ``(t, cumulative preemptions)`` over the preemption window."""


@dataclass(frozen=True)
class Inputs:
    """Everything the autoscaler reads at one tick (times in seconds since the epoch)."""

    remaining_samples: int
    """Samples not yet committed (failed shards excluded: they will not be rendered)."""
    batches: Sequence[BatchView]
    throughput: Throughput
    cost: CostReport
    budget: BudgetState
    preemptions_total: int = 0
    """Cumulative spot preemptions of the dataset."""


@dataclass(frozen=True)
class Decision:
    """What to apply after one tick."""

    desired: int
    recommended: int
    reason: str
    parallelism: dict[str, int]
    """New ``spec.parallelism`` per live batch (all live batches, changed or not)."""
    capacity_mode: str
    capacity_reason: str
    active: int
    pending: int
    unschedulable: int
    eta_seconds: float | None
    throughput: Throughput
    cost: CostReport
    budget: BudgetState
    state: ScalerState
    conditions: list[Condition] = field(default_factory=list)
    window: RateWindow | None = None
    """The throughput window after this tick (persisted with the state)."""


# --------------------------------------------------------------------------- sizing


def desired_workers(
    spec: SynthDatasetSpec,
    *,
    per_worker_per_day: float,
    remaining_samples: int,
    now: float,
    budget: BudgetState | None = None,
    dollars_per_sample: float = 0.0,
) -> tuple[int, str]:
    """Workers needed for the target and the deadline, bounded; with the reason.

    ``now`` is seconds since the epoch (the deadline is compared with it).
    """
    if spec.suspend:
        return 0, "Suspended"
    if remaining_samples <= 0:
        return 0, "Complete"
    if budget is not None and budget.exceeded:
        return 0, str(budget.reason)
    rate = max(per_worker_per_day, 1e-9)
    lo, hi = spec.workers.min, spec.workers.max
    need, reason = 0, ""
    target = spec.throughput.target_per_day
    if target:
        need, reason = math.ceil(target / rate - 1e-9), "Target"
    deadline = spec.throughput.deadline
    if deadline is not None:
        aware = deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
        days_left = (aware.timestamp() - now) / SECONDS_PER_DAY
        by_deadline = math.ceil(remaining_samples / (rate * days_left) - 1e-9) if days_left > 0 else hi + 1
        if by_deadline > need:
            need, reason = by_deadline, "Deadline"
    if not reason:
        need, reason = hi, "NoTarget"
    n = min(max(need, lo), hi)
    if n != need:
        reason += "AtMax" if need > hi else "AtMin"
    shards_left = max(1, -(-remaining_samples // spec.shard_size))
    if n > shards_left:
        n, reason = shards_left, reason + "ShardsLeft"
    if budget is not None and dollars_per_sample > 0 and math.isfinite(budget.remaining_dollars):
        affordable = int(budget.remaining_dollars // (dollars_per_sample * spec.shard_size))
        if n > affordable:
            n, reason = max(0, affordable), reason + "BudgetBound"
    return n, reason


def stabilize(
    recommended: int,
    state: ScalerState,
    *,
    now: float,
    settings: ScalingSettings,
    bounds: tuple[int, int],
    force: bool = False,
) -> tuple[int, ScalerState]:
    """Apply hysteresis to a recommendation; returns the desired count and the new state."""
    recs = _change_points(state.recommendations, now - settings.scale_down_stabilization_seconds, now, recommended)
    recs = recs[-settings.max_recommendations :]
    current = state.desired
    lo, hi = bounds
    if current is None or force or not lo <= current <= hi:
        chosen = recommended
    else:
        chosen = recommended if recommended >= current else max(n for _, n in recs)
        if chosen != current:
            # the dead band holds only downwards: a small shortfall would otherwise last forever
            small = chosen < current and current - chosen <= settings.tolerance * current
            too_soon = (  # starting from zero (first run, resume, budget raised) is never too soon
                current > 0
                and state.last_change is not None
                and now - state.last_change < settings.min_change_interval_seconds
            )
            if small or too_soon:
                chosen = current
    changed = chosen != current
    return chosen, replace(
        state,
        desired=chosen,
        last_change=now if changed else state.last_change,
        recommendations=recs,
    )


# --------------------------------------------------------------------------- capacity


def capacity_mode(
    spec: SynthDatasetSpec,
    state: ScalerState,
    *,
    now: float,
    preemptions_total: int,
    spot_workers: int,
    settings: ScalingSettings,
) -> tuple[str, str, ScalerState]:
    """Where new pods go (spot or on-demand), why, and the new state."""
    horizon = now - settings.preemption_window_seconds
    marks = _change_points(state.preemption_marks, horizon, now, preemptions_total)
    state = replace(state, preemption_marks=marks[-settings.max_recommendations :])
    if not spec.node_pool.spot:
        return Capacity.ON_DEMAND.value, "SpotDisabled", _mode(state, Capacity.ON_DEMAND.value, now)
    mode = state.capacity_mode or Capacity.SPOT.value
    if not spec.node_pool.on_demand_fallback:
        return Capacity.SPOT.value, "Spot", _mode(state, Capacity.SPOT.value, now)
    if spec.queue:  # issue #17: under Kueue its ResourceFlavors choose spot or on-demand, not this fallback
        return Capacity.SPOT.value, "KueueFlavors", _mode(state, Capacity.SPOT.value, now)
    if mode == Capacity.ON_DEMAND.value:
        if now - state.mode_since >= settings.spot_retry_seconds:
            return Capacity.SPOT.value, "SpotRetry", _mode(replace(state, preemption_marks=()), "spot", now)
        return mode, "SpotPreempted", state
    base_t, base_n = state.preemption_marks[0]
    preempted = preemptions_total - base_n
    span_h = max(now - max(base_t, horizon), settings.tick_seconds) / 3600.0
    # Each preempted pod was a spot pod exposed in the window: with none running now (a pause,
    # a drained batch) the rate is per pod that ran, not per a made-up one (issue #22 item 3).
    per_pod_hour = preempted / max(1, spot_workers, preempted) / span_h
    if preempted >= settings.fallback_min_preemptions and per_pod_hour >= settings.fallback_preemptions_per_pod_hour:
        return Capacity.ON_DEMAND.value, "SpotPreempted", _mode(state, Capacity.ON_DEMAND.value, now)
    return Capacity.SPOT.value, "Spot", _mode(state, Capacity.SPOT.value, now)


def _change_points(
    points: tuple[tuple[float, int], ...], horizon: float, now: float, value: int
) -> tuple[tuple[float, int], ...]:
    """A step function as its change points: those after ``horizon``, the one in effect at the
    horizon, and ``value`` at ``now`` if it differs. Unchanged input gives an unchanged tuple, so
    the status (where the state lives) is not rewritten on every tick."""
    before = [p for p in points if p[0] <= horizon]
    kept = before[-1:] + [p for p in points if p[0] > horizon]
    if not kept or kept[-1][1] != value:
        kept.append((now, value))
    return tuple(kept)


def _mode(state: ScalerState, mode: str, now: float) -> ScalerState:
    if state.capacity_mode == mode:
        return state
    return replace(state, capacity_mode=mode, mode_since=now)


# --------------------------------------------------------------------------- distribution


def distribute(desired: int, batches: Sequence[BatchView], *, mode: str) -> dict[str, int]:
    """Parallelism per live batch.

    Water-filling: the desired pods are spread as evenly as possible (ties to the oldest batch),
    batches on the current capacity type first, never more pods than shards left in a batch.
    A batch keeps at least its established pods (scale-down drains). Running pods are not moved:
    a rebalance only places new ones. Which batches are live (the window) is the dataset
    decision's rule (``dataset.window_size``), the only rule that opens batches.
    """
    # Floors: running pods are never cut to rebalance; when the fleet shrinks, only established
    # pods are kept (they finish their shard) and the ones the Jobs just started go.
    alloc = [min(b.running, max(0, b.remaining)) for b in batches]
    if sum(alloc) > desired:
        alloc = [min(b.established, max(0, b.remaining)) for b in batches]
    left = max(0, desired - sum(alloc))
    for preferred in (True, False):
        heap = [(alloc[i], i) for i, b in enumerate(batches) if (b.capacity == mode) == preferred
                and alloc[i] < b.remaining]
        heapq.heapify(heap)
        while left > 0 and heap:
            n, i = heapq.heappop(heap)
            alloc[i] = n + 1
            left -= 1
            if alloc[i] < batches[i].remaining:
                heapq.heappush(heap, (alloc[i], i))
    return {b.name: alloc[i] for i, b in enumerate(batches)}


# --------------------------------------------------------------------------- one tick


def decide(
    spec: SynthDatasetSpec,
    inputs: Inputs,
    state: ScalerState,
    *,
    now: float,
    settings: ScalingSettings,
) -> Decision:
    """One autoscaler tick: size, stabilise, pick capacity, distribute."""
    batches = list(inputs.batches)
    spot_workers = sum(b.running for b in batches if b.capacity == Capacity.SPOT.value)
    mode, mode_reason, state = capacity_mode(
        spec, state, now=now, preemptions_total=inputs.preemptions_total, spot_workers=spot_workers,
        settings=settings,
    )
    if mode == Capacity.ON_DEMAND.value and mode_reason == "SpotPreempted" and _on_demand_over_budget(spec, inputs):
        # on-demand would stop the whole run on the budget: a preempted but affordable spot pool is better
        mode, mode_reason = Capacity.SPOT.value, "SpotKeptForBudget"
        state = _mode(state, mode, now)
    per_sample = inputs.cost.dollars_per_1k_samples / 1000.0
    recommended, reason = desired_workers(
        spec,
        per_worker_per_day=inputs.throughput.per_worker_per_day,
        remaining_samples=inputs.remaining_samples,
        now=now,
        budget=inputs.budget,
        dollars_per_sample=per_sample,
    )
    force = recommended == 0 and (spec.suspend or inputs.remaining_samples <= 0 or inputs.budget.exceeded)
    bounds = (0 if force else min(spec.workers.min, recommended), spec.workers.max)
    desired, state = stabilize(recommended, state, now=now, settings=settings, bounds=bounds, force=force)

    unschedulable = sum(b.unschedulable for b in batches)
    parallelism = distribute(desired, batches, mode=mode)
    active = sum(b.running for b in batches)
    pending = sum(b.pending for b in batches)
    # ETA at the per-worker rate times the workers running (or about to): steadier than the
    # bursty committed rate, and meaningful before the first commit.
    workers = active if active else desired
    rate = workers * inputs.throughput.per_worker_per_day
    eta = inputs.remaining_samples / rate * SECONDS_PER_DAY if rate > 0 else None
    if inputs.remaining_samples <= 0:
        eta = 0.0
    conditions = [
        inputs.budget.condition(),
        _pods_scheduled(unschedulable, active + pending + unschedulable),
        Condition(type="SpotFallback", status="True" if mode == Capacity.ON_DEMAND.value and spec.node_pool.spot
                  else "False", reason=mode_reason, message=f"new pods go to {mode} capacity"),
    ]
    return Decision(
        desired=desired,
        recommended=recommended,
        reason=reason,
        parallelism=parallelism,
        capacity_mode=mode,
        capacity_reason=mode_reason,
        active=active,
        pending=pending + unschedulable,
        unschedulable=unschedulable,
        eta_seconds=eta,
        throughput=inputs.throughput,
        cost=inputs.cost,
        budget=inputs.budget,
        state=state,
        conditions=conditions,
    )


def _on_demand_over_budget(spec: SynthDatasetSpec, inputs: Inputs) -> bool:
    """Whether finishing on on-demand capacity would reach ``budget.maxDollars``."""
    cap = spec.budget.max_dollars
    if cap is None:
        return False
    gpu_s = SECONDS_PER_DAY * max(1, spec.node_pool.gpus_per_worker) / max(inputs.throughput.per_worker_per_day, 1e-9)
    remaining = inputs.remaining_samples * gpu_s * spec.pricing.on_demand_per_gpu_hour / 3600.0
    return inputs.cost.dollars + remaining >= cap


def _pods_scheduled(unschedulable: int, total: int) -> Condition:
    if unschedulable:
        return Condition(type="PodsScheduled", status="False", reason="Unschedulable",
                         message=f"{unschedulable} of {total} rendering pods cannot be scheduled (no GPU capacity); "
                         "they are not counted as workers")
    return Condition(type="PodsScheduled", status="True", reason="Scheduled", message="all pods scheduled")
