"""Prometheus metrics of the operator, on a CollectorRegistry passed in explicitly.

Per-dataset figures are not kept in counters that the operator increments (a restart would
reset them and double counting would creep in): they are read from each dataset's status, the
single source of truth, and exposed by a custom collector at scrape time. The status counters
(samples, shards, preemptions, retries, GPU time, dollars) are monotonic, so they are exposed
as Prometheus counters (``_total``). Reconcile durations and errors, and the per-shard quality
distribution, are genuine events and use ordinary instruments.

Usage::

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.update_from_status("synth", "phase1", spec_dict, status_dict)   # each reconcile
    with metrics.time_reconcile("dataset"):
        ...
    serve(registry, port=8080)                                               # /metrics

Metric names (all prefixed ``parallelsynth_``; labels ``namespace``, ``dataset``):

==========================================  ========  ==========================================
name                                        type      meaning
==========================================  ========  ==========================================
samples_completed_total{category}           counter   samples in committed shards
samples_target{category}                    gauge     target samples
shards_completed_total / shards_failed_total counter  shards committed / failed for good
preemptions_total, retries_total            counter   pods preempted; pod and Job retries
samples_per_day, target_samples_per_day     gauge     measured rate, spec target
samples_per_day_per_worker                  gauge     measured rate of one worker (autoscaler input)
workers_desired / workers_active / workers_pending  gauge  autoscaler output, running, waiting
workers_admitted / workers_waiting          gauge     with spec.queue: pods Kueue admitted / holds
gpu_seconds_total{capacity}                 counter   GPU time by spot / on-demand
cost_dollars_total                          counter   dollars spent
projected_cost_dollars, budget_dollars      gauge     projected total, budget.maxDollars
budget_exceeded                             gauge     1 when new work is stopped by the budget
eta_seconds                                 gauge     seconds until the estimated completion
capacity_on_demand                          gauge     1 when new pods go to on-demand capacity
storage_bytes                               gauge     bytes written (status, else estimated)
quality_pass_ratio                          gauge     fraction of samples passing the gate
render_busy_ratio                           gauge     workers' time inside the render call (measured)
shard_quality_score                         histogram mean quality score per committed shard
reconcile_duration_seconds{handler}         histogram reconcile time
reconcile_errors_total{handler}             counter   reconcile failures
==========================================  ========  ==========================================
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from parallel_synth.decisions.facts import condition
from synth_contract.times import parse_time

PREFIX = "parallelsynth_"
_LABELS = ("namespace", "dataset")
QUALITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class DatasetSnapshot:
    """The per-dataset figures exposed at scrape time."""

    namespace: str
    dataset: str
    samples_completed: Mapping[str, int] = field(default_factory=dict)
    """Committed samples per category."""
    samples_target: Mapping[str, int] = field(default_factory=dict)
    shards_completed: int = 0
    shards_failed: int = 0
    samples_failed: int = 0
    preemptions: int = 0
    retries: int = 0
    samples_per_day: float = 0.0
    samples_per_day_per_worker: float = 0.0
    target_samples_per_day: float | None = None
    workers_desired: int = 0
    workers_active: int = 0
    workers_pending: int = 0
    workers_admitted: int | None = None  # issue #17: only with spec.queue
    workers_waiting: int | None = None
    spot_gpu_seconds: float = 0.0
    on_demand_gpu_seconds: float = 0.0
    dollars: float = 0.0
    projected_dollars: float = 0.0
    budget_dollars: float | None = None
    budget_exceeded: bool = False
    eta_seconds: float | None = None
    capacity_on_demand: bool = False
    storage_bytes: float = 0.0
    quality_pass_ratio: float | None = None
    render_busy_ratio: float | None = None
    """status.renderBusyRatio: share of the workers' main-thread time inside Blender's render call."""


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def snapshot_from_status(
    namespace: str, dataset: str, spec: Mapping[str, Any], status: Mapping[str, Any], *, now: datetime
) -> DatasetSnapshot:
    """Read a snapshot from a SynthDataset's spec and status (wire dicts, camelCase).

    Storage comes from ``status.storageBytes`` when the operator fills it, else it is estimated
    as committed samples x ``spec.estimates.bytesPerSample``. Quality comes from
    ``status.quality.passRate`` when present.
    """
    cats = status.get("categories") or {}
    completed = {str(k): int(_num((v or {}).get("completed"))) for k, v in cats.items()}
    target = {str(k): int(_num((v or {}).get("target"))) for k, v in cats.items()}
    samples = status.get("samples") or {}
    if not completed:
        completed = {"all": int(_num(samples.get("completed")))}
        target = {"all": int(_num(samples.get("target"), _num(spec.get("samples"))))}
    shards = status.get("shards") or {}
    workers = status.get("workers") or {}
    cost = status.get("cost") or {}
    eta_at = parse_time(status.get("eta"))
    eta = max(0.0, (eta_at - now).total_seconds()) if eta_at is not None else None
    budget = (spec.get("budget") or {}).get("maxDollars")
    budget_cond = condition(status.get("conditions"), "BudgetExceeded")
    storage = status.get("storageBytes")
    if storage is None:
        per = _num((spec.get("estimates") or {}).get("bytesPerSample"), 5_000_000)
        storage = sum(completed.values()) * per
    quality = status.get("quality") or {}
    spot_h = _num(cost.get("spotGpuHours"))
    od_h = _num(cost.get("onDemandGpuHours"))
    if not spot_h and not od_h:
        od_h = _num(cost.get("gpuHours"))
    return DatasetSnapshot(
        namespace=namespace,
        dataset=dataset,
        samples_completed=completed,
        samples_target=target,
        shards_completed=int(_num(shards.get("completed"))),
        shards_failed=int(_num(shards.get("failed"))),
        samples_failed=int(_num(samples.get("failed"))),
        preemptions=int(_num(status.get("preemptions"))),
        retries=int(_num(status.get("retries"))),
        samples_per_day=_num(status.get("samplesPerDay")),
        samples_per_day_per_worker=_num(workers.get("samplesPerDayEach")),
        target_samples_per_day=(spec.get("throughput") or {}).get("targetPerDay"),
        workers_desired=int(_num(workers.get("desired"))),
        workers_active=int(_num(workers.get("active"))),
        workers_pending=int(_num(workers.get("pending"))),
        workers_admitted=None if workers.get("admitted") is None else int(_num(workers.get("admitted"))),
        workers_waiting=None if workers.get("waiting") is None else int(_num(workers.get("waiting"))),
        spot_gpu_seconds=spot_h * 3600.0,
        on_demand_gpu_seconds=od_h * 3600.0,
        dollars=_num(cost.get("dollars")),
        projected_dollars=_num(cost.get("projectedDollars")),
        budget_dollars=None if budget is None else float(budget),
        budget_exceeded=budget_cond is not None and budget_cond.get("status") == "True",
        eta_seconds=eta,
        capacity_on_demand=status.get("capacityMode") == "on-demand",
        storage_bytes=float(storage),
        quality_pass_ratio=None if quality.get("passRate") is None else _num(quality.get("passRate")),
        render_busy_ratio=None if status.get("renderBusyRatio") is None else _num(status.get("renderBusyRatio")),
    )


class _DatasetCollector(Collector):
    """Exposes the latest snapshot of each dataset (owned by one :class:`Metrics`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[tuple[str, str], DatasetSnapshot] = {}

    def put(self, snap: DatasetSnapshot) -> None:
        with self._lock:
            self._snapshots[(snap.namespace, snap.dataset)] = snap

    def drop(self, namespace: str, dataset: str) -> None:
        with self._lock:
            self._snapshots.pop((namespace, dataset), None)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snaps = list(self._snapshots.values())
        cat = [*_LABELS, "category"]

        def counter(name: str, doc: str, labels: Iterable[str] = _LABELS) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, doc, labels=list(labels))

        def gauge(name: str, doc: str, labels: Iterable[str] = _LABELS) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))

        completed = counter("samples_completed", "Samples in committed shards.", cat)
        target = gauge("samples_target", "Target number of samples.", cat)
        samples_failed = counter("samples_failed", "Samples in shards that failed for good.")
        shards_done = counter("shards_completed", "Shards committed.")
        shards_failed = counter("shards_failed", "Shards that exhausted their retries.")
        preemptions = counter("preemptions", "Rendering pods preempted (spot notice, eviction).")
        retries = counter("retries", "Pod retries and Job re-attempts after failures.")
        rate = gauge("samples_per_day", "Measured samples per day (sliding window).")
        per_worker = gauge("samples_per_day_per_worker", "Measured samples per day of one worker.")
        target_rate = gauge("target_samples_per_day", "Target samples per day (spec.throughput).")
        desired = gauge("workers_desired", "Rendering pods the autoscaler wants.")
        active = gauge("workers_active", "Rendering pods running.")
        pending = gauge("workers_pending", "Rendering pods waiting for capacity (not workers).")
        admitted = gauge("workers_admitted", "With spec.queue: rendering pods Kueue admitted.")
        waiting = gauge("workers_waiting", "With spec.queue: rendering pods of Jobs waiting for Kueue admission.")
        gpu = counter("gpu_seconds", "GPU-seconds consumed, by capacity type.", [*_LABELS, "capacity"])
        spent = counter("cost_dollars", "Dollars spent.")
        projected = gauge("projected_cost_dollars", "Projected total dollars at the current rate.")
        budget = gauge("budget_dollars", "budget.maxDollars of the dataset.")
        exceeded = gauge("budget_exceeded", "1 when the budget stopped new work.")
        eta = gauge("eta_seconds", "Seconds until the estimated completion.")
        on_demand = gauge("capacity_on_demand", "1 when new pods go to on-demand capacity.")
        storage = gauge("storage_bytes", "Bytes written to the dataset's storage.")
        passing = gauge("quality_pass_ratio", "Fraction of samples passing the quality gate.")
        busy = gauge("render_busy_ratio", "Share of the workers' main-thread time inside Blender's render call "
                     "over the committed shards (status.renderBusyRatio).")
        for s in snaps:
            key = [s.namespace, s.dataset]
            for c, n in sorted(s.samples_completed.items()):
                completed.add_metric([*key, c], float(n))
            for c, n in sorted(s.samples_target.items()):
                target.add_metric([*key, c], float(n))
            samples_failed.add_metric(key, float(s.samples_failed))
            shards_done.add_metric(key, float(s.shards_completed))
            shards_failed.add_metric(key, float(s.shards_failed))
            preemptions.add_metric(key, float(s.preemptions))
            retries.add_metric(key, float(s.retries))
            rate.add_metric(key, s.samples_per_day)
            per_worker.add_metric(key, s.samples_per_day_per_worker)
            if s.target_samples_per_day is not None:
                target_rate.add_metric(key, float(s.target_samples_per_day))
            desired.add_metric(key, float(s.workers_desired))
            active.add_metric(key, float(s.workers_active))
            pending.add_metric(key, float(s.workers_pending))
            if s.workers_admitted is not None:
                admitted.add_metric(key, float(s.workers_admitted))
            if s.workers_waiting is not None:
                waiting.add_metric(key, float(s.workers_waiting))
            gpu.add_metric([*key, "spot"], s.spot_gpu_seconds)
            gpu.add_metric([*key, "on-demand"], s.on_demand_gpu_seconds)
            spent.add_metric(key, s.dollars)
            projected.add_metric(key, s.projected_dollars)
            if s.budget_dollars is not None:
                budget.add_metric(key, s.budget_dollars)
            exceeded.add_metric(key, 1.0 if s.budget_exceeded else 0.0)
            if s.eta_seconds is not None:
                eta.add_metric(key, s.eta_seconds)
            on_demand.add_metric(key, 1.0 if s.capacity_on_demand else 0.0)
            storage.add_metric(key, s.storage_bytes)
            if s.quality_pass_ratio is not None:
                passing.add_metric(key, s.quality_pass_ratio)
            if s.render_busy_ratio is not None:
                busy.add_metric(key, s.render_busy_ratio)
        yield from (
            completed, target, samples_failed, shards_done, shards_failed, preemptions, retries, rate,
            per_worker, target_rate, desired, active, pending, admitted, waiting, gpu, spent, projected, budget, exceeded, eta,
            on_demand, storage, passing, busy,
        )


class Metrics:
    """The operator's instruments, all registered on one explicit registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._datasets = _DatasetCollector()
        registry.register(self._datasets)
        self.reconcile_duration = Histogram(
            PREFIX + "reconcile_duration_seconds",
            "Time spent in one reconcile, by handler.",
            ["handler"],
            registry=registry,
            buckets=RECONCILE_BUCKETS,
        )
        self.reconcile_errors = Counter(
            PREFIX + "reconcile_errors",
            "Reconciles that raised, by handler.",
            ["handler"],
            registry=registry,
        )
        self.shard_quality = Histogram(
            PREFIX + "shard_quality_score",
            "Mean quality score (0..1) of each committed shard.",
            list(_LABELS),
            registry=registry,
            buckets=QUALITY_BUCKETS,
        )

    def update(self, snapshot: DatasetSnapshot) -> None:
        """Replace the figures of one dataset."""
        self._datasets.put(snapshot)

    def update_from_status(
        self, namespace: str, dataset: str, spec: Mapping[str, Any], status: Mapping[str, Any], *, now: datetime
    ) -> DatasetSnapshot:
        """Read the figures of one dataset from its spec and status; returns the snapshot."""
        snap = snapshot_from_status(namespace, dataset, spec, status, now=now)
        self._datasets.put(snap)
        return snap

    def forget(self, namespace: str, dataset: str) -> None:
        """Stop exposing a deleted dataset."""
        self._datasets.drop(namespace, dataset)

    def observe_shard_quality(self, namespace: str, dataset: str, score: float) -> None:
        """Record the mean quality score of a newly committed shard."""
        self.shard_quality.labels(namespace, dataset).observe(score)

    @contextmanager
    def time_reconcile(self, handler: str) -> Iterator[None]:
        """Time a reconcile; count it as an error if it raises (and re-raise)."""
        start = time.perf_counter()
        try:
            yield
        except Exception:
            self.reconcile_errors.labels(handler).inc()
            raise
        finally:
            self.reconcile_duration.labels(handler).observe(time.perf_counter() - start)


def serve(registry: CollectorRegistry, *, port: int, addr: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` for ``registry`` on a background thread."""
    start_http_server(port, addr=addr, registry=registry)
