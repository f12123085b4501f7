"""What a fleet simulation takes and gives: the simulated world's settings and the report.

Plain data, no behaviour: :mod:`parallel_synth.simulator.fleet` runs a :class:`SimConfig` and
fills a :class:`SimReport`; ``synthctl simulate``, the benchmark and the plot read the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


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
    warm_nodes: bool = False
    """The pools' nodes exist and are idle at the start (a fixed fleet, as on kwok in
    benchmarks/bench_fleet.py): the first pods start at once instead of waiting for new nodes."""
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
    index_seconds: float = 120.0
    """Run time of the index Job that finishes a dataset once every shard is committed."""


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
    stopped_pods: int = 0
    """Running pods stopped by SIGTERM (scale-down, a deleted Job): they checkpoint and exit 143,
    which the operator's status counts as preemptions (``status.pod_facts``)."""
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The last status ``decide_batch`` wrote for each RenderBatch (its counters; not in the summary)."""

    def summary(self) -> dict[str, Any]:
        """The report without the per-day rows and the status (for --json and tests)."""
        d = asdict(self)
        d.pop("days")
        d.pop("final_status")
        d.pop("batches")
        return d
