"""The throughput autoscaler: how many rendering pods, in which batches, on which capacity.

Pure decisions, no I/O, time as an argument. One call, :func:`decide`, takes what the operator
(or the simulator) observed and the previous :class:`ScalerState`, and returns a
:class:`Decision`: the desired worker count, the parallelism of each live RenderBatch, how many
new batches to open and with what parallelism, the capacity type for new pods, the budget gate,
the measured throughput and the conditions to show. The caller applies it.

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
    controller deletes the newest pods first). What the live batches cannot absorb opens new
    batches, unless pods are already waiting for GPU capacity.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from parallel_synth.decisions.cost import (
    BudgetState,
    Capacity,
    CostReport,
    GpuTime,
    budget_state,
    cost_report,
)
from parallel_synth.decisions.throughput import (
    SECONDS_PER_DAY,
    Observation,
    RateWindow,
    Throughput,
    measure,
    window_from_status,
    window_to_status,
)
from synth_contract import multiview, planning
from synth_contract.api import SynthDatasetSpec


@dataclass(frozen=True)
class ScalingSettings:
    """Tunables of the autoscaler (defaults suit shards of minutes to hours)."""

    tick_seconds: float = 60.0
    """Interval of the autoscaler timer; pods younger than this are not protected on scale-down."""
    min_change_interval_seconds: float = 300.0
    """Shortest time between two changes of the desired worker count."""
    scale_down_stabilization_seconds: float = 1800.0
    """Scale-down goes only to the highest recommendation within this look-back."""
    tolerance: float = 0.1
    """Relative dead band for scale-down: smaller reductions are ignored."""
    preemption_window_seconds: float = 3600.0
    """Look-back over which the spot preemption rate is measured."""
    fallback_preemptions_per_pod_hour: float = 0.15
    """Spot preemptions per spot pod per hour above which new pods go on-demand."""
    fallback_min_preemptions: int = 3
    """Fewest preemptions in the window before falling back (one unlucky pod is not a storm)."""
    spot_retry_seconds: float = 6 * 3600.0
    """Time on on-demand after a fallback before spot is tried again."""
    max_live_batches: int = 32
    """Upper bound on live RenderBatches (``workers.max`` bounds it too)."""
    max_recommendations: int = 256
    """Bound on the remembered recommendations (memory)."""


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
    unplanned_shards: int
    """Shards not yet handed to any RenderBatch."""
    shards_per_batch: int
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
    new_batches: tuple[int, ...]
    """Parallelism of each RenderBatch to open now (in shard order)."""
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
    conditions: list[dict[str, str]] = field(default_factory=list)
    window: RateWindow | None = None
    """The throughput window after this tick (persisted with the state)."""

    def status(self, *, now: datetime, with_state: bool = True) -> dict[str, Any]:
        """The status fields this decision fills (the caller merges them into its patch).

        ``autoscaler`` holds the state the next tick needs (bounded: a few hundred numbers),
        so a restarted operator keeps its measurements and its hysteresis.
        """
        eta = None
        if self.eta_seconds is not None and math.isfinite(self.eta_seconds):
            eta = datetime.fromtimestamp(now.timestamp() + self.eta_seconds, tz=UTC)
        per_worker = self.throughput.per_worker_per_day
        out: dict[str, Any] = {
            "samplesPerDay": round(self.throughput.samples_per_day or 0.0, 1),
            "eta": eta.strftime("%Y-%m-%dT%H:%M:%SZ") if eta else None,
            "workers": {
                "desired": self.desired,
                "active": self.active,
                "pending": self.pending,
                "unschedulable": self.unschedulable,
                "samplesPerDayEach": round(per_worker, 1),
            },
            "cost": self.cost.status(),
            "capacityMode": self.capacity_mode,
        }
        if with_state:
            out["autoscaler"] = {
                **state_to_status(self.state),
                "reason": self.reason,
                "recommended": self.recommended,
                "rateMeasured": self.throughput.measured,
                "window": window_to_status(self.window) if self.window else [],
            }
        return out


def state_to_status(state: ScalerState) -> dict[str, Any]:
    """The state as a JSON-able dict (``status.autoscaler``)."""
    return {
        "desired": state.desired,
        "lastChange": state.last_change,
        "recommendations": [[round(t, 1), n] for t, n in state.recommendations],
        "capacityMode": state.capacity_mode,
        "modeSince": state.mode_since,
        "preemptionMarks": [[round(t, 1), n] for t, n in state.preemption_marks],
    }


def state_from_status(data: Mapping[str, Any] | None) -> ScalerState:
    """The state from ``status.autoscaler``; anything malformed gives a fresh state."""
    if not data:
        return ScalerState()

    def pairs(items: Any) -> tuple[tuple[float, int], ...]:
        out = []
        for item in items or []:
            try:
                t, n = item
                out.append((float(t), int(n)))
            except (TypeError, ValueError):
                continue
        return tuple(sorted(out))

    try:
        desired = None if data.get("desired") is None else int(data["desired"])
        last = None if data.get("lastChange") is None else float(data["lastChange"])
        return ScalerState(
            desired=desired,
            last_change=last,
            recommendations=pairs(data.get("recommendations")),
            capacity_mode=data.get("capacityMode"),
            mode_since=float(data.get("modeSince") or 0.0),
            preemption_marks=pairs(data.get("preemptionMarks")),
        )
    except (TypeError, ValueError):
        return ScalerState()


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
    per_pod_hour = preempted / max(1, spot_workers) / span_h
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


def distribute(
    desired: int,
    batches: Sequence[BatchView],
    *,
    mode: str,
    unplanned_shards: int,
    shards_per_batch: int,
    max_new_batches: int,
    allow_new: bool = True,
) -> tuple[dict[str, int], tuple[int, ...]]:
    """Parallelism per live batch and the batches to open.

    Water-filling: the desired pods are spread as evenly as possible (ties to the oldest batch),
    batches on the current capacity type first, never more pods than shards left in a batch.
    A batch keeps at least its established pods (scale-down drains). What the live batches
    cannot hold opens new batches. Running pods are not moved: a rebalance only places new ones.
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
    out = {b.name: alloc[i] for i, b in enumerate(batches)}
    new: list[int] = []
    shards = unplanned_shards
    while allow_new and left > 0 and shards > 0 and len(new) < max_new_batches:
        size = min(shards_per_batch, shards)
        p = min(left, size)
        new.append(p)
        left -= p
        shards -= size
    return out, tuple(new)


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
    live = sum(1 for b in batches if b.remaining > 0)
    max_live = min(settings.max_live_batches, max(1, spec.workers.max))
    parallelism, new = distribute(
        desired,
        batches,
        mode=mode,
        unplanned_shards=inputs.unplanned_shards,
        shards_per_batch=inputs.shards_per_batch,
        max_new_batches=max(0, max_live - live),
        allow_new=unschedulable == 0 and not inputs.budget.exceeded and not spec.suspend,
    )
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
        {
            "type": "SpotFallback",
            "status": "True" if mode == Capacity.ON_DEMAND.value and spec.node_pool.spot else "False",
            "reason": mode_reason,
            "message": f"new pods go to {mode} capacity",
        },
    ]
    return Decision(
        desired=desired,
        recommended=recommended,
        reason=reason,
        parallelism=parallelism,
        new_batches=new,
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


def _pods_scheduled(unschedulable: int, total: int) -> dict[str, str]:
    if unschedulable:
        return {
            "type": "PodsScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": f"{unschedulable} of {total} rendering pods cannot be scheduled (no GPU capacity); "
            "they are not counted as workers",
        }
    return {"type": "PodsScheduled", "status": "True", "reason": "Scheduled", "message": "all pods scheduled"}


# --------------------------------------------------------------------------- operator adapter


@dataclass(frozen=True)
class PodCounts:
    """Rendering pods of one batch by scheduling state (what :class:`BatchView` needs)."""

    established: int = 0
    running: int = 0
    pending: int = 0
    unschedulable: int = 0

    def status(self) -> dict[str, int]:
        """Fields for the RenderBatch status (read back by :func:`autoscale`)."""
        return {"established": self.established, "unschedulable": self.unschedulable}


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pod_counts(pods: Iterable[Mapping[str, Any]], *, now: datetime, settings: ScalingSettings) -> PodCounts:
    """Count live pods: running (established if started a tick ago), pending, unschedulable.

    A pending pod with ``PodScheduled=False`` and reason ``Unschedulable`` waits for GPU
    capacity that may never come: it is not a worker and is reported as such.
    """
    young_after = now.timestamp() - settings.tick_seconds
    established = running = pending = unschedulable = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        st = pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            continue
        phase = st.get("phase") or "Pending"
        if phase == "Running":
            running += 1
            started = _epoch(st.get("startTime"))
            if started is not None and started <= young_after:
                established += 1
        elif phase == "Pending":
            blocked = any(
                c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
                for c in st.get("conditions") or []
            )
            if blocked:
                unschedulable += 1
            else:
                pending += 1
    return PodCounts(established, running, pending, unschedulable)


INDEX_KEY = "batch.kubernetes.io/job-completion-index"
"""Annotation (and label) with a pod's index in its Indexed Job."""


def unsettled_gpu_seconds(
    pods: Iterable[Mapping[str, Any]],
    *,
    settled: Sequence[tuple[int, int]],
    shard_offset: int,
    job_name: str | None,
    gpus: int,
) -> float:
    """GPU-seconds of ended pods of a Job whose shard is neither committed nor failed for good.

    These are interrupted attempts (preempted, evicted, failed and retried) of shards still to
    render: their samples are not committed yet, so the rate must not count their GPU time
    until the shard settles. ``gpuSecondsFinished - this`` is the batch's ``gpuSecondsSettled``.
    ``settled`` holds batch offsets; a pod's offset is ``shard_offset + its completion index``.
    Pods without an index, or of another Job, are taken as settled.
    """
    weight = max(gpus, 0) or 1
    total = 0.0
    for pod in pods:
        st = pod.get("status") or {}
        if st.get("phase") not in ("Succeeded", "Failed"):
            continue
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        if job_name is not None and labels.get("job-name", labels.get("batch.kubernetes.io/job-name")) not in (
            None, job_name
        ):
            continue
        raw = (meta.get("annotations") or {}).get(INDEX_KEY, labels.get(INDEX_KEY))
        if raw is None:
            continue
        offset = shard_offset + int(raw)
        if any(a <= offset <= b for a, b in settled):
            continue
        start = _epoch(st.get("startTime"))
        ends = [_epoch(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
                for cs in st.get("containerStatuses") or []]
        end = max((e for e in ends if e is not None), default=None)
        if start is not None and end is not None:
            total += max(0.0, end - start) * weight
    return total


@dataclass(frozen=True)
class LiveBatch:
    """A live RenderBatch as the dataset reconcile sees it (spec fields and status dict)."""

    name: str
    shard_count: int
    parallelism: int
    capacity: str
    status: Mapping[str, Any]


def batch_views(batches: Sequence[LiveBatch]) -> list[BatchView]:
    """The autoscaler's view of live batches (what :func:`distribute` takes)."""
    return [_batch_view(b) for b in batches]


def _batch_view(b: LiveBatch) -> BatchView:
    st = b.status
    done = int(st.get("shardsDone") or 0)
    failed = sum(hi - lo + 1 for lo, hi in _spans(st.get("failedShards")))
    running = int(st.get("active") or 0)
    unsched = int(st.get("unschedulable") or 0)
    return BatchView(
        name=b.name,
        remaining=max(0, b.shard_count - done - failed),
        parallelism=b.parallelism,
        capacity=b.capacity,
        established=min(running, int(st.get("established") or 0)),
        running=running,
        pending=max(0, int(st.get("pending") or 0) - unsched),
        unschedulable=unsched,
    )


def _spans(text: Any) -> list[tuple[int, int]]:
    if not text:
        return []
    out = []
    for part in str(text or "").split(","):
        part = part.strip()
        if part:
            a, _, b = part.partition("-")
            out.append((int(a), int(b or a)))
    return out


def _settled_gpu(batch_status: Mapping[str, Any]) -> float:
    """GPU time behind a batch's settled shards: ``gpuSecondsSettled`` when the batch reports
    it, else the GPU time of its finished pods (biased low during preemption storms)."""
    settled = batch_status.get("gpuSecondsSettled")
    if settled is not None:
        return float(settled)
    return float(batch_status.get("gpuSecondsFinished") or 0.0)


def autoscale(
    spec: SynthDatasetSpec,
    status: Mapping[str, Any],
    batches: Sequence[LiveBatch],
    *,
    now: datetime,
    settings: ScalingSettings | None = None,
    window: RateWindow | None = None,
    state: ScalerState | None = None,
) -> Decision:
    """One autoscaler tick from a dataset status and its live batches (wire dicts).

    Reads ``status.samples``, ``status.shards``, ``status.nextShard``, ``status.gpuSeconds``,
    ``status.spotGpuSeconds``, ``status.preemptions``, ``status.folded.gpuSeconds`` and each
    batch's ``gpuSecondsSettled`` (else ``gpuSecondsFinished``), ``shardsDone``,
    ``failedShards``, ``active``, ``pending``, ``established`` and ``unschedulable``; the
    previous state from ``status.autoscaler``.
    Apply ``Decision.parallelism`` to the batches and merge ``Decision.status(now=now)``.

    ``window`` and ``state``, when given, replace what ``status.autoscaler`` holds (a caller
    that keeps them in memory, like the simulator, skips the round trip through the status).
    """
    cfg = settings or ScalingSettings()
    auto = status.get("autoscaler") or {}
    if state is None:
        state = state_from_status(auto)
    win = window if window is not None else window_from_status(auto.get("window"))
    samples = status.get("samples") or {}
    completed = int(samples.get("completed") or 0)
    failed = int(samples.get("failed") or 0)
    finished_gpu = float((status.get("folded") or {}).get("gpuSeconds") or 0.0) + sum(
        _settled_gpu(b.status) for b in batches
    )
    ts = now.timestamp()
    current = Observation(ts, completed, finished_gpu, float(status.get("gpuSeconds") or 0.0))
    win = win.observe(current)
    thr = measure(
        win,
        current=current,
        prior_gpu_seconds_per_sample=multiview.estimated_gpu_seconds_per_sample(spec),  # all views
        gpus_per_worker=spec.node_pool.gpus_per_worker,
    )
    total_gpu = float(status.get("gpuSeconds") or 0.0)
    spot_gpu = min(total_gpu, float(status.get("spotGpuSeconds") or 0.0))
    report = cost_report(
        spec,
        GpuTime(spot=spot_gpu, on_demand=total_gpu - spot_gpu),
        completed_samples=completed,
        gpu_seconds_per_sample=SECONDS_PER_DAY * max(1, spec.node_pool.gpus_per_worker) / thr.per_worker_per_day,
        capacity=state.capacity_mode,
    )
    total_shards = planning.shard_count(spec)
    inputs = Inputs(
        remaining_samples=max(0, spec.samples - completed - failed),
        unplanned_shards=max(0, total_shards - int(status.get("nextShard") or 0)),
        shards_per_batch=int((status.get("plan") or {}).get("shardsPerBatch") or planning.shards_per_batch(spec)),
        batches=batch_views(batches),
        throughput=thr,
        cost=report,
        budget=budget_state(spec, report, was_exceeded=_condition_true(status, "BudgetExceeded")),
        preemptions_total=int(status.get("preemptions") or 0),
    )
    return replace(decide(spec, inputs, state, now=ts, settings=cfg), window=win)


def _condition_true(status: Mapping[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])


def transition_events(old_status: Mapping[str, Any], decision: Decision) -> list[tuple[str, str, str]]:
    """Events ``(type, reason, message)`` for conditions that just turned True.

    ``BudgetExceeded`` (Warning), ``SpotFallback`` (Warning) and unschedulable pods (Warning).
    """
    before = {c.get("type"): c.get("status") for c in old_status.get("conditions") or []}
    out = []
    for c in decision.conditions:
        kind, value = c["type"], c["status"]
        turned = value == ("False" if kind == "PodsScheduled" else "True")
        if turned and before.get(kind) != value:
            out.append(("Warning", c["reason"], c["message"]))
    return out
