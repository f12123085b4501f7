"""A discrete-event simulation of a rendering fleet, driving the real operator decisions.

Why: to size a run (days, GPUs, dollars) before spending money, and to test the autoscaler
against preemption storms, capacity shortages and budgets without a cluster.

What is real and what is simulated:

* real: the planner (:mod:`synth_contract.planning`: shards, batches), the operator's window
  and status aggregation (:func:`parallel_synth.decisions.batch.decide_dataset`, which folds finished
  batches and aggregates counters with :mod:`parallel_synth.decisions.status`), the autoscaler
  (:func:`parallel_synth.decisions.scaling.autoscale`), cost and budget (:mod:`parallel_synth.decisions.cost`);
* simulated: GPU nodes (spot and on-demand pools with a capacity limit and a provisioning
  delay), Indexed Jobs (parallelism, one pod per shard, newest pods deleted first on
  scale-down, preempted indexes recreated), render times (the per-sample time times a
  log-normal factor per pod), spot preemptions (Poisson per spot pod), render failures, and
  the renderer's checkpoint on SIGTERM (a preempted pod keeps the samples it finished);
* simulated, with a quota (issue #17): Kueue admission. Pods wait for admission while the
  dataset's admitted GPUs would exceed the ClusterQueue's quota (per pod, as partial admission
  with ``job-min-parallelism: 1`` grants); when the quota shrinks (``quota_schedule``: another
  team reclaims its share), Kueue evicts the newest admitted pods: they checkpoint, count as
  preemptions, and wait for admission again.

Granularity: events are pod starts, shard completions, preemptions, autoscaler ticks and day
boundaries, kept in a heap on a simulated clock. Nothing is ever done per sample, so a
500M-sample plan (500k shards) runs in seconds.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from parallel_synth.decisions.batch import LABEL_INDEX, decide_dataset
from parallel_synth.decisions.cost import Capacity, GpuTime, dollars
from parallel_synth.decisions.scaling import LiveBatch, batch_views, distribute
from parallel_synth.decisions.status import batch_counts
from parallel_synth.decisions.throughput import SECONDS_PER_DAY
from parallel_synth.settings import OperatorSettings
from synth_contract import multiview, planning, ranges
from synth_contract.api import RenderBatchSpec, SynthDatasetSpec

# event kinds (ordered: at equal times, pods end before ticks look at them)
_END, _PREEMPT, _READY, _DAY, _TICK, _FULL, _QUICK, _QUOTA = range(8)
# pod states (_QUEUED: waiting for Kueue admission, holds no quota and no node)
_WAITING, _PROVISIONING, _RUNNING, _GONE, _QUEUED = range(5)


@dataclass(frozen=True)
class SimConfig:
    """The simulated world. Defaults: the spec's own estimates, no preemptions, no failures."""

    days: float | None = None
    """Stop after this many simulated days (None: when the dataset is done)."""
    max_days: float = 36500.0
    """Safety stop when ``days`` is None."""
    gpu_seconds_per_sample: float | None = None
    """True render time of a sample on one GPU (default: spec.estimates.gpuSecondsPerSample)."""
    jitter: float = 0.1
    """Sigma of the log-normal factor on each pod's render time."""
    preemption_rate: float = 0.0
    """Spot preemptions per spot pod per hour (0.2 = a 20%/hour storm)."""
    preemption_window: tuple[float, float] | None = None
    """Only preempt between these simulated days (None: always)."""
    failure_rate: float = 0.0
    """Probability that a pod ends with a render error (counts against the shard's retries)."""
    checkpoint: bool = True
    """A preempted or deleted pod keeps its finished samples (the renderer checkpoints on SIGTERM)."""
    pod_startup_seconds: float = 60.0
    """Image pull and Blender start-up, paid by every pod on its GPU."""
    node_provision_seconds: float = 180.0
    """Time for a new GPU node to join when no idle node is ready."""
    spot_gpus: int | None = None
    """Spot GPU capacity of the cluster (default: workers.max x gpusPerWorker)."""
    on_demand_gpus: int | None = None
    """On-demand GPU capacity (default: workers.max x gpusPerWorker)."""
    tick_seconds: float = 300.0
    """Interval of the autoscaler tick (the operator's dataset reconcile) in simulated seconds."""
    reconcile_seconds: float = 15.0
    """The operator's dataset reconcile interval: when a batch runs out of shards to start while
    its pods finish, the next reconcile (this much later) hands the freed workers to the next
    batch. Simulated only when it matters, and only as the hand-over (the autoscaler's real
    ``distribute`` of the current desired count), so long runs stay fast."""
    seed: int = 0
    """Seed of the simulation's random generator (render times, preemptions, failures)."""
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    """Simulated start time (deadlines in the spec are compared with the simulated clock)."""
    quota_gpus: int | None = None
    """Kueue: GPUs the dataset's queue admits at once (None: no Kueue, pods only wait for nodes)."""
    quota_schedule: tuple[tuple[float, int], ...] = ()
    """Kueue: (day, GPUs) quota changes from that simulated day on (needs ``quota_gpus``)."""


@dataclass(frozen=True)
class DayStats:
    """One simulated day."""

    day: int
    samples: int
    cumulative: int
    workers: float
    """Average running pods over the day."""
    desired: int
    pending: int
    dollars: float
    cumulative_dollars: float
    measured_per_day: float
    """``status.samplesPerDay`` at the end of the day."""
    target_per_day: float | None
    capacity_mode: str
    lost_gpu_hours: float
    admitted_gpus: float = 0.0
    """Average GPUs admitted by Kueue over the day (with a quota; 0 without)."""
    quota_gpus: int | None = None
    """The quota at the end of the day (None: no Kueue)."""


@dataclass
class SimReport:
    """What a simulation found."""

    dataset: str
    samples_target: int
    finished: bool
    stopped_by_budget: bool
    elapsed_days: float
    samples_completed: int
    shards_total: int
    shards_completed: int
    shards_failed: int
    duplicate_commits: int
    preemptions: int
    retries: int
    spot_gpu_hours: float
    on_demand_gpu_hours: float
    lost_gpu_hours: float
    """GPU time that produced no kept sample: interrupted pods' start-up and partial samples."""
    overhead_gpu_hours: float
    """Start-up time of pods that committed their shard."""
    dollars: float
    dollars_per_1k_samples: float
    projected_dollars: float
    target_per_day: float | None
    attained_per_day: float
    """Mean samples/day over the full days of the run (first and last day excluded when possible)."""
    gpus_for_target: float | None
    """GPUs the target needs at the true render time, with no overhead."""
    workers_max: int
    peak_workers: int
    budget_dollars: float | None
    budget_stop_day: float | None
    capacity_switches: list[tuple[float, str]]
    event_reasons: dict[str, int]
    """Events the operator would have posted, by reason (e.g. ProjectedOverBudget, SpotPreempted)."""
    ticks: int
    handovers: int
    events: int
    wall_seconds: float
    days: list[DayStats] = field(default_factory=list)
    final_status: dict[str, Any] = field(default_factory=dict)
    quota_gpus: int | None = None
    """Kueue quota at the start (None: no Kueue)."""
    quota_per_day: float | None = None
    """Samples/day the quota allows at the true render time, with no overhead (time-averaged quota)."""
    quota_schedule: tuple[tuple[float, int], ...] = ()
    """The quota changes simulated: (day, GPUs)."""
    quota_final_per_day: float | None = None
    """Samples/day the quota in effect at the end allows (no overhead): the rate from now on."""
    admitted_gpus: float = 0.0
    """Average GPUs admitted over the run (with a quota)."""
    kueue_evictions: int = 0
    """Pods Kueue evicted when the quota shrank (counted in preemptions)."""

    def summary(self) -> dict[str, Any]:
        """The report without the per-day rows and the status (for --json and tests)."""
        d = asdict(self)
        d.pop("days")
        d.pop("final_status")
        return d


class _Pod:
    __slots__ = ("admitted", "batch", "capacity", "duration", "left", "offset", "started", "state", "version")

    def __init__(self, batch: _Batch, offset: int, left: int, capacity: str) -> None:
        self.batch = batch
        self.offset = offset
        self.left = left
        self.capacity = capacity
        self.state = _WAITING
        self.started = 0.0
        self.duration = 0.0  # render time of the samples left (start-up excluded)
        self.version = 0
        self.admitted = False  # holds Kueue quota


class _Batch:
    __slots__ = (
        "active",
        "cache",
        "capacity",
        "completed",
        "dirty",
        "failed",
        "gpu_finished",
        "gpu_spot",
        "index",
        "name",
        "parallelism",
        "pending_gpu",
        "preemptions",
        "queue",
        "retries",
        "settled",
        "shard_count",
        "shard_start",
        "spans",
        "spec_wire",
        "tries",
    )

    def __init__(self, name: str, index: int, spec: RenderBatchSpec) -> None:
        self.name = name
        self.index = index
        self.shard_start = spec.shard_start
        self.shard_count = spec.shard_count
        self.parallelism = 0
        self.capacity: str = spec.capacity
        self.spec_wire = spec.wire()
        self.queue: deque[tuple[int, int]] = deque()
        self.active: list[_Pod] = []
        self.completed: set[int] = set()
        self.failed: set[int] = set()
        self.dirty = True
        self.cache: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.spans: tuple[list[ranges.Span], list[ranges.Span]] = ([], [])
        self.tries: dict[int, int] = {}
        self.preemptions = 0
        self.retries = 0
        self.gpu_finished = 0.0
        self.gpu_spot = 0.0
        self.settled = 0.0  # GPU-seconds of shards committed or failed for good (all their attempts)
        self.pending_gpu: dict[int, float] = {}  # GPU-seconds of interrupted attempts, by offset


class _Pool:
    __slots__ = ("idle", "limit", "used", "waiting")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.idle = 0
        self.waiting: deque[_Pod] = deque()


def _add_span(spans: list[ranges.Span], n: int) -> None:
    """Insert ``n`` (not yet present) into sorted, merged spans in place: O(log spans)."""
    i = bisect.bisect_left(spans, (n, n))
    joins_left = i > 0 and spans[i - 1][1] == n - 1
    joins_right = i < len(spans) and spans[i][0] == n + 1
    if joins_left and joins_right:
        spans[i - 1] = (spans[i - 1][0], spans[i][1])
        del spans[i]
    elif joins_left:
        spans[i - 1] = (spans[i - 1][0], n)
    elif joins_right:
        spans[i] = (n, spans[i][1])
    else:
        spans.insert(i, (n, n))


class Simulation:
    """One dataset on a simulated fleet. Use :func:`simulate`."""

    def __init__(self, name: str, spec: SynthDatasetSpec, config: SimConfig) -> None:
        self.name = name
        if config.quota_gpus is not None and not spec.queue:  # a quota means Kueue: the operator behaves so
            spec = spec.model_copy(update={"queue": "simulated"})
        self.spec = spec
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.sps = config.gpu_seconds_per_sample or multiview.estimated_gpu_seconds_per_sample(spec)  # all views
        self.gpus = max(1, spec.node_pool.gpus_per_worker)
        default_cap = spec.workers.max * self.gpus
        self.pools = {
            Capacity.SPOT.value: _Pool(default_cap if config.spot_gpus is None else config.spot_gpus),
            Capacity.ON_DEMAND.value: _Pool(default_cap if config.on_demand_gpus is None else config.on_demand_gpus),
        }
        self.op_settings = OperatorSettings(dataset_interval=config.tick_seconds)
        self.t0 = config.start.timestamp()
        self.t = 0.0
        self.heap: list[tuple[float, int, int, Any, int]] = []
        self.seq = 0
        self.batches: dict[str, _Batch] = {}
        self.status: dict[str, Any] = {}
        self.shards_total = planning.shard_count(spec)
        self.committed_samples = 0
        self.committed_shards = 0
        self.failed_shards = 0
        self.duplicates = 0
        self.preemptions = 0
        self.retries = 0
        self.gpu_done = GpuTime()
        self.lost = 0.0
        self.overhead = 0.0
        self.running = 0
        self.area = 0.0
        self.last_area_t = 0.0
        self.peak = 0
        self.events = 0
        self.ticks = 0
        self.budget_stop: float | None = None
        self.switches: list[tuple[float, str]] = []
        self.mode = ""
        self.days: list[DayStats] = []
        self.event_reasons: dict[str, int] = {}
        self.quick_pending = False
        self.full_pending = False
        self.handovers = 0
        self._day_mark = (0, 0.0, 0.0, 0.0)  # samples, area, dollars, lost at the last day boundary
        self.quota = config.quota_gpus  # issue #17: Kueue admission (None: none)
        self.quota_used = 0
        self.kueue: deque[_Pod] = deque()
        self.adm_area = 0.0
        self.adm_last_t = 0.0
        self.adm_day_mark = 0.0
        self.kueue_evictions = 0

    # ------------------------------------------------------------------ event plumbing

    def _push(self, t: float, kind: int, obj: Any = None, version: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, kind, self.seq, obj, version))

    def _set_running(self, delta: int) -> None:
        self.area += self.running * (self.t - self.last_area_t)
        self.last_area_t = self.t
        self.running += delta
        self.peak = max(self.peak, self.running)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t0 + self.t, tz=UTC)

    # ------------------------------------------------------------------ pods and nodes

    def _admit(self, delta: int) -> None:
        self.adm_area += self.quota_used * (self.t - self.adm_last_t)
        self.adm_last_t = self.t
        self.quota_used += delta

    def _admit_queued(self) -> None:
        """Kueue admits waiting pods, oldest first, while the quota has room."""
        while self.quota is not None and self.kueue and self.quota_used + self.gpus <= self.quota:
            nxt = self.kueue.popleft()
            if nxt.state == _QUEUED:
                self._schedule(nxt)

    def _on_quota(self, limit: int) -> None:
        """The quota changes; above it, Kueue evicts the newest admitted pods (they checkpoint)."""
        self.quota = limit
        if self.quota_used > limit:
            held = [p for b in self.batches.values() for p in b.active if p.admitted]
            held.sort(key=lambda p: (p.state == _RUNNING, p.started), reverse=True)
            for pod in held:
                if self.quota_used <= limit:
                    break
                if pod.state == _RUNNING:
                    self.preemptions += 1
                    pod.batch.preemptions += 1
                self.kueue_evictions += 1
                batch = pod.batch
                self._interrupt(pod, node_lost=False)
                self._sync(batch)
        self._admit_queued()

    def _schedule(self, pod: _Pod) -> None:
        if self.quota is not None and not pod.admitted:
            if self.quota_used + self.gpus > self.quota:
                pod.state = _QUEUED
                self.kueue.append(pod)
                return
            pod.admitted = True
            self._admit(self.gpus)
        pool = self.pools[pod.capacity]
        if pool.used + self.gpus <= pool.limit:
            pool.used += self.gpus
            if pool.idle >= self.gpus:
                pool.idle -= self.gpus
                self._start(pod)
            else:
                pod.state = _PROVISIONING
                self._push(self.t + self.cfg.node_provision_seconds, _READY, pod, pod.version)
        else:
            pod.state = _WAITING
            pool.waiting.append(pod)

    def _start(self, pod: _Pod) -> None:
        pod.state = _RUNNING
        pod.started = self.t
        factor = math.exp(self.rng.gauss(0.0, self.cfg.jitter)) if self.cfg.jitter > 0 else 1.0
        pod.duration = pod.left * self.sps / self.gpus * factor
        end = self.t + self.cfg.pod_startup_seconds + pod.duration
        self._set_running(+1)
        if pod.capacity == Capacity.SPOT.value and self.cfg.preemption_rate > 0:
            at = self.t + self.rng.expovariate(self.cfg.preemption_rate / 3600.0)
            if at < end and self._storm_at(at):
                self._push(at, _PREEMPT, pod, pod.version)
                return
        self._push(end, _END, pod, pod.version)

    def _storm_at(self, t: float) -> bool:
        w = self.cfg.preemption_window
        return w is None or w[0] * SECONDS_PER_DAY <= t < w[1] * SECONDS_PER_DAY

    def _release(self, pod: _Pod, *, node_lost: bool) -> None:
        """Free the pod's GPUs; the node stays (idle) unless it was preempted."""
        pool = self.pools[pod.capacity]
        if pod.state in (_RUNNING, _PROVISIONING):
            pool.used -= self.gpus
            if not node_lost:
                pool.idle += self.gpus
        if pod.state == _RUNNING:
            self._set_running(-1)
        pod.state = _GONE
        pod.version += 1
        pod.batch.active.remove(pod)
        while pool.waiting and pool.used + self.gpus <= pool.limit:
            nxt = pool.waiting.popleft()
            if nxt.state == _WAITING:
                self._schedule(nxt)
        if pod.admitted:
            pod.admitted = False
            self._admit(-self.gpus)
            self._admit_queued()

    def _charge(self, pod: _Pod) -> float:
        """Account the pod's GPU time (it is ending now); returns the seconds charged."""
        if pod.state != _RUNNING:
            return 0.0
        seconds = (self.t - pod.started) * self.gpus
        self.gpu_done = self.gpu_done.add(pod.capacity, seconds)
        pod.batch.gpu_finished += seconds
        if pod.capacity == Capacity.SPOT.value:
            pod.batch.gpu_spot += seconds
        return seconds

    def _interrupt(self, pod: _Pod, *, node_lost: bool) -> None:
        """SIGTERM (preemption or scale-down): checkpoint, requeue the index first in line."""
        seconds = self._charge(pod)
        saved = 0
        if pod.state == _RUNNING and self.cfg.checkpoint and pod.duration > 0:
            rendering = self.t - pod.started - self.cfg.pod_startup_seconds
            saved = max(0, min(pod.left - 1, int(rendering / (pod.duration / pod.left))))
            self.lost += seconds - saved * pod.duration / pod.left * self.gpus
        else:
            self.lost += seconds
        batch = pod.batch
        batch.pending_gpu[pod.offset] = batch.pending_gpu.get(pod.offset, 0.0) + seconds
        self._release(pod, node_lost=node_lost)
        batch.queue.appendleft((pod.offset, pod.left - saved))

    def _sync(self, batch: _Batch) -> None:
        """The Job controller: keep ``parallelism`` pods, create for pending indexes, delete newest."""
        while len(batch.active) < batch.parallelism and batch.queue:
            offset, left = batch.queue.popleft()
            pod = _Pod(batch, offset, left, batch.capacity)
            batch.active.append(pod)
            self._schedule(pod)
        excess = len(batch.active) - batch.parallelism
        if excess > 0:
            victims = sorted(batch.active, key=lambda p: (p.state == _RUNNING, -p.started))[:excess]
            for pod in victims:
                self._interrupt(pod, node_lost=False)

    # ------------------------------------------------------------------ events

    def _on_end(self, pod: _Pod) -> None:
        batch = pod.batch
        seconds = self._charge(pod) + batch.pending_gpu.pop(pod.offset, 0.0)
        if self.cfg.failure_rate > 0 and self.rng.random() < self.cfg.failure_rate:
            self.retries += 1
            batch.retries += 1
            self.lost += seconds
            tries = batch.tries.get(pod.offset, 0) + 1
            batch.tries[pod.offset] = tries
            self._release(pod, node_lost=False)
            if tries > self.spec.retry.per_shard:
                batch.failed.add(pod.offset)
                batch.dirty = True
                batch.settled += seconds
                self.failed_shards += 1
            else:
                batch.pending_gpu[pod.offset] = seconds
                batch.queue.appendleft((pod.offset, pod.left))
        else:
            batch.settled += seconds
            self.overhead += self.cfg.pod_startup_seconds * self.gpus
            self._release(pod, node_lost=False)
            if pod.offset in batch.completed:
                self.duplicates += 1
            else:
                batch.completed.add(pod.offset)
                _add_span(batch.spans[0], pod.offset)
                shard = batch.shard_start + pod.offset
                self.committed_samples += len(planning.shard_range(self.spec, shard))
                self.committed_shards += 1
        self._sync(batch)
        self._maybe_quick_reconcile(batch)

    def _maybe_quick_reconcile(self, batch: _Batch) -> None:
        """A batch's Job has free slots but nothing to start: the operator will move them soon.

        A finished batch needs the whole reconcile (fold it, open the next); otherwise the
        hand-over of the freed workers is enough.
        """
        if batch.queue or len(batch.active) >= batch.parallelism:
            return
        if not batch.active and not self.full_pending:
            self.full_pending = True
            self._push(self.t + self.cfg.reconcile_seconds, _FULL)
        elif not self.quick_pending:
            self.quick_pending = True
            self._push(self.t + self.cfg.reconcile_seconds, _QUICK)

    def _on_preempt(self, pod: _Pod) -> None:
        self.preemptions += 1
        pod.batch.preemptions += 1
        batch = pod.batch
        self._interrupt(pod, node_lost=True)
        self._sync(batch)

    def _batch_body(self, b: _Batch) -> dict[str, Any]:
        """The RenderBatch as the operator's batch reconcile would have written it."""
        key = None
        if not b.active:  # an idle batch changes only when its counters do: reuse its body
            key = (len(b.completed), len(b.failed), b.preemptions, b.retries, b.gpu_finished, b.parallelism,
                   b.capacity, len(b.queue))
            if b.cache is not None and b.cache[0] == key:
                return b.cache[1]
        body = self._make_body(b)
        b.cache = None if key is None else (key, body)
        return body

    def _make_body(self, b: _Batch) -> dict[str, Any]:
        young = self.t - self.cfg.tick_seconds
        live = 0.0
        running = established = waiting = provisioning = queued = 0
        for p in b.active:
            if p.state == _RUNNING:
                live += (self.t - p.started) * self.gpus
                running += 1
                established += p.started <= young
            elif p.state == _WAITING:
                waiting += 1
            elif p.state == _PROVISIONING:
                provisioning += 1
            elif p.state == _QUEUED:
                queued += 1
        if b.dirty:
            b.spans = (b.spans[0], ranges.normalise((o, o) for o in b.failed))
            b.dirty = False
        done, failed = b.spans
        finished = not b.queue and not b.active
        phase = ("Failed" if b.failed else "Succeeded") if finished else ("Running" if b.parallelism else "Suspended")
        st = batch_counts(
            {
                "phase": phase,
                "attempt": 1,
                "preemptions": b.preemptions,
                "retries": b.retries,
                "gpuSeconds": round(b.gpu_finished + live, 3),
                "gpuSecondsFinished": round(b.gpu_finished, 3),
                "gpuSecondsSettled": round(b.settled, 3),
                "spotGpuSeconds": round(b.gpu_spot + (live if b.capacity == Capacity.SPOT.value else 0.0), 3),
                "active": running,
                "pending": waiting + provisioning,
                "established": established,
                "unschedulable": waiting,
                "admitted": running + waiting + provisioning if self.quota is not None else 0,
                "waiting": queued,
            },
            spec=self.spec,
            shard_start=b.shard_start,
            shard_count=b.shard_count,
            completed=done,
            failed=failed,
        )
        spec = {**b.spec_wire, "parallelism": b.parallelism, "capacity": b.capacity}
        return {"metadata": {"name": b.name, "labels": {LABEL_INDEX: str(b.index)}}, "spec": spec, "status": st}

    def _on_tick(self) -> None:
        """The operator's dataset reconcile, as ``reconcile.reconcile_dataset`` applies it: the
        real window, status aggregation and autoscaler (``batches.decide_dataset``)."""
        self.ticks += 1
        now = self.now()
        bodies = [self._batch_body(b) for b in self.batches.values()]
        dd = decide_dataset(
            name=self.name, spec=self.spec, status=self.status, batches=bodies, generation=1, now=now,
            settings=self.op_settings,
        )
        for c in dd.create:
            b = _Batch(c.name, c.index, c.spec)
            b.parallelism = c.spec.parallelism
            b.queue.extend((o, len(planning.shard_range(self.spec, c.spec.shard_start + o)))
                           for o in range(c.spec.shard_count))
            self.batches[c.name] = b
        for name, par in dd.set_parallelism.items():
            if name in self.batches:
                self.batches[name].parallelism = par
        self.status = dd.status
        for gone in dd.delete:
            self.batches.pop(gone, None)
        for e in dd.events:
            self.event_reasons[e.reason] = self.event_reasons.get(e.reason, 0) + 1
        mode = str(self.status.get("capacityMode") or "")
        if mode != self.mode:
            self.switches.append((self.t / SECONDS_PER_DAY, mode))
            self.mode = mode
        budget: dict[str, Any] = next(
            (c for c in self.status.get("conditions") or [] if c.get("type") == "BudgetExceeded"), {}
        )
        if budget.get("status") == "True" and self.budget_stop is None:
            self.budget_stop = self.t / SECONDS_PER_DAY
        for b in list(self.batches.values()):
            self._sync(b)

    def _on_handover(self) -> None:
        """Between ticks: give the workers a drained batch freed to the next batches."""
        desired = (self.status.get("autoscaler") or {}).get("desired")
        if desired is None:
            return
        self.handovers += 1
        live = [LiveBatch(b.name, b.shard_count, b.parallelism, b.capacity, self._batch_body(b)["status"])
                for b in self.batches.values()]
        parallelism, _ = distribute(
            int(desired), batch_views(live), mode=self.mode or Capacity.SPOT.value, unplanned_shards=0,
            shards_per_batch=1, max_new_batches=0, allow_new=False,
        )
        for b in list(self.batches.values()):
            if parallelism.get(b.name, b.parallelism) != b.parallelism:
                b.parallelism = parallelism[b.name]
                self._sync(b)

    def _gpu_now(self) -> GpuTime:
        acc = self.gpu_done
        for b in self.batches.values():
            for p in b.active:
                if p.state == _RUNNING:
                    acc = acc.add(p.capacity, (self.t - p.started) * self.gpus)
        return acc

    def _on_day(self) -> None:
        self._set_running(0)
        self._admit(0)
        day = len(self.days)
        spent = dollars(self._gpu_now(), self.spec.pricing)
        samples0, area0, dollars0, lost0 = self._day_mark
        workers = self.status.get("workers") or {}
        self.days.append(
            DayStats(
                day=day + 1,
                samples=self.committed_samples - samples0,
                cumulative=self.committed_samples,
                workers=(self.area - area0) / SECONDS_PER_DAY,
                desired=int(workers.get("desired") or 0),
                pending=int(workers.get("pending") or 0),
                dollars=spent - dollars0,
                cumulative_dollars=spent,
                measured_per_day=float(self.status.get("samplesPerDay") or 0.0),
                target_per_day=self.spec.throughput.target_per_day,
                capacity_mode=self.mode,
                lost_gpu_hours=(self.lost - lost0) / 3600.0,
                admitted_gpus=(self.adm_area - self.adm_day_mark) / SECONDS_PER_DAY,
                quota_gpus=self.quota,
            )
        )
        self.adm_day_mark = self.adm_area
        self._day_mark = (self.committed_samples, self.area, spent, self.lost)

    # ------------------------------------------------------------------ run

    def _done(self) -> bool:
        return self.committed_shards + self.failed_shards >= self.shards_total

    def _idle_after_budget(self) -> bool:
        return self.budget_stop is not None and not any(b.active for b in self.batches.values())

    def run(self, *, progress: Callable[[DayStats], None] | None = None) -> SimReport:
        wall = time.perf_counter()
        limit = (self.cfg.days if self.cfg.days is not None else self.cfg.max_days) * SECONDS_PER_DAY
        self._push(0.0, _TICK)
        self._push(SECONDS_PER_DAY, _DAY)
        if self.quota is not None:
            for day, gpus in self.cfg.quota_schedule:
                self._push(day * SECONDS_PER_DAY, _QUOTA, int(gpus))
        while self.heap:
            t, kind, _, obj, version = heapq.heappop(self.heap)
            if t > limit:
                self.t = limit
                break
            self.t = t
            if kind in (_END, _PREEMPT, _READY):
                if obj.version != version:
                    continue  # stale: the pod was deleted or preempted meanwhile
                self.events += 1
                if kind == _END:
                    self._on_end(obj)
                elif kind == _PREEMPT:
                    self._on_preempt(obj)
                else:
                    self._start(obj)
                if self._done():
                    break
            elif kind == _TICK:
                self._on_tick()
                if self._idle_after_budget():
                    break
                self._push(t + self.cfg.tick_seconds, _TICK)
            elif kind == _FULL:
                self.full_pending = False
                self._on_tick()
            elif kind == _QUICK:
                self.quick_pending = False
                self._on_handover()
            elif kind == _QUOTA:
                self._on_quota(obj)
            elif kind == _DAY:
                self._on_day()
                if progress is not None:
                    progress(self.days[-1])
                self._push(t + SECONDS_PER_DAY, _DAY)
        if self.t > len(self.days) * SECONDS_PER_DAY:
            self._on_day()  # the last, partial day
        self._on_tick()  # a final reconcile so the status shows the end state
        return self._report(time.perf_counter() - wall)

    def _mean_quota(self) -> float:
        """The quota averaged over the simulated time."""
        q0 = float(self.cfg.quota_gpus or 0)
        if self.t <= 0:
            return q0
        area, t, q = 0.0, 0.0, q0
        for day, gpus in sorted(self.cfg.quota_schedule):
            at = min(day * SECONDS_PER_DAY, self.t)
            area += q * max(0.0, at - t)
            t, q = max(t, at), float(gpus)
        return (area + q * max(0.0, self.t - t)) / self.t

    def _report(self, wall: float) -> SimReport:
        self._admit(0)
        gpu = self._gpu_now()
        spent = dollars(gpu, self.spec.pricing)
        cost = self.status.get("cost") or {}
        elapsed = self.t / SECONDS_PER_DAY
        full = [d for d in self.days if d.day <= int(elapsed)]
        steady = full[1:] if len(full) > 2 else full
        attained = (
            sum(d.samples for d in steady) / len(steady)
            if steady
            else (self.committed_samples / elapsed if elapsed > 0 else 0.0)
        )
        target = self.spec.throughput.target_per_day
        return SimReport(
            dataset=self.name,
            samples_target=self.spec.samples,
            finished=self._done(),
            stopped_by_budget=self.budget_stop is not None and not self._done(),
            elapsed_days=elapsed,
            samples_completed=self.committed_samples,
            shards_total=self.shards_total,
            shards_completed=self.committed_shards,
            shards_failed=self.failed_shards,
            duplicate_commits=self.duplicates,
            preemptions=self.preemptions,
            retries=self.retries,
            spot_gpu_hours=gpu.spot / 3600.0,
            on_demand_gpu_hours=gpu.on_demand / 3600.0,
            lost_gpu_hours=self.lost / 3600.0,
            overhead_gpu_hours=self.overhead / 3600.0,
            dollars=spent,
            dollars_per_1k_samples=spent / self.committed_samples * 1000.0 if self.committed_samples else 0.0,
            projected_dollars=float(cost.get("projectedDollars") or spent),
            target_per_day=target,
            attained_per_day=attained,
            gpus_for_target=target * self.sps / SECONDS_PER_DAY if target else None,
            workers_max=self.spec.workers.max,
            budget_dollars=self.spec.budget.max_dollars,
            peak_workers=self.peak,
            budget_stop_day=self.budget_stop,
            capacity_switches=self.switches,
            event_reasons=self.event_reasons,
            ticks=self.ticks,
            handovers=self.handovers,
            events=self.events,
            wall_seconds=wall,
            days=self.days,
            final_status=self.status,
            quota_gpus=self.cfg.quota_gpus,
            quota_per_day=self._mean_quota() * SECONDS_PER_DAY / self.sps if self.cfg.quota_gpus else None,
            quota_schedule=tuple(c for c in self.cfg.quota_schedule if c[0] * SECONDS_PER_DAY < self.t),
            quota_final_per_day=(self.quota or 0) * SECONDS_PER_DAY / self.sps if self.cfg.quota_gpus else None,
            admitted_gpus=self.adm_area / self.t if self.t > 0 and self.quota is not None else 0.0,
            kueue_evictions=self.kueue_evictions,
        )


def simulate(
    name: str,
    spec: SynthDatasetSpec,
    config: SimConfig | None = None,
    *,
    progress: Callable[[DayStats], None] | None = None,
) -> SimReport:
    """Simulate one dataset from an empty status until it is done (or ``config.days``)."""
    return Simulation(name, spec, config or SimConfig()).run(progress=progress)


def start_after(config: SimConfig, report: SimReport) -> SimConfig:
    """The config of a phase that starts when the previous one ended (same fleet, same seed)."""
    return replace(config, start=config.start + timedelta(days=report.elapsed_days), seed=config.seed + 1)


def plot(reports: list[SimReport], path: str, *, title: str = "") -> None:
    """Write a PNG: samples/day vs target, workers, cumulative dollars (phases side by side)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    offset = 0
    for r in reports:
        xs = [offset + d.day for d in r.days]
        axes[0].plot(xs, [d.samples for d in r.days], label=f"{r.dataset}: committed/day")
        if r.target_per_day:
            axes[0].plot(xs, [r.target_per_day] * len(xs), "--", label=f"{r.dataset}: target")
        axes[1].plot(xs, [d.workers for d in r.days], label=f"{r.dataset}: running (avg)")
        axes[1].plot(xs, [d.desired for d in r.days], ":", label=f"{r.dataset}: desired")
        axes[2].plot(xs, [d.cumulative_dollars for d in r.days], label=f"{r.dataset}: $ spent")
        if r.budget_dollars is not None:
            axes[2].plot(xs, [r.budget_dollars] * len(xs), "--", label=f"{r.dataset}: budget")
        offset = xs[-1] if xs else offset
    axes[0].set_ylabel("samples / day")
    axes[1].set_ylabel("workers")
    axes[2].set_ylabel("dollars (cumulative)")
    axes[2].set_xlabel("simulated day")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title or "parallel-synth fleet simulation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
