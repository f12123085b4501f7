"""Status aggregation: Pods and Jobs into RenderBatch counters, shard spans into sample counts.

Pure functions (time is an argument) over typed facts (:mod:`~parallel_synth.decisions.facts`)
and the status models of :mod:`synth_contract.api`. Everything a status holds is bounded: shard
sets are compact ranges, pods are remembered in bounded ledgers with a watermark, finished
batches are folded into totals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from parallel_synth.decisions.facts import PodFacts, condition
from synth_contract import planning, ranges
from synth_contract.api import BatchPhase, Condition, SynthDatasetSpec
from synth_contract.times import format_time

MAX_MESSAGE = 1024
"""Longest condition message written to status."""

# --------------------------------------------------------------------------- conditions


def set_condition(
    conditions: Sequence[Condition], kind: str, status: bool | str, reason: str, message: str, *, now: datetime
) -> list[Condition]:
    """Conditions with one set; ``lastTransitionTime`` moves only when the status flips."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    out: list[Condition] = []
    found = False
    for c in conditions:
        if c.type != kind:
            out.append(c)
            continue
        found = True
        ltt = c.last_transition_time if c.status == value else None
        out.append(Condition(type=kind, status=value, reason=reason, message=message[:MAX_MESSAGE],  # type: ignore[arg-type]
                             last_transition_time=ltt or format_time(now)))
    if not found:
        out.append(Condition(type=kind, status=value, reason=reason, message=message[:MAX_MESSAGE],  # type: ignore[arg-type]
                             last_transition_time=format_time(now)))
    return out


def condition_status(conditions: Iterable[Condition], kind: str) -> str | None:
    """The status (True/False/Unknown) of the condition ``kind``, None when absent."""
    found = condition(list(conditions), kind)
    return found.status if found is not None else None


# --------------------------------------------------------------------------- shards to samples


def samples_in(spec: SynthDatasetSpec, shards: Iterable[ranges.Span]) -> int:
    """Samples held by global shard spans (the last shard may be short)."""
    total = 0
    for a, b in shards:
        total += min((b + 1) * spec.shard_size, spec.samples) - min(a * spec.shard_size, spec.samples)
    return total


def categories_in(spec: SynthDatasetSpec, shards: Iterable[ranges.Span]) -> dict[str, int]:
    """Samples per category held by global shard spans (closed form, O(spans x categories))."""
    out: dict[str, int] = {}
    for a, b in shards:
        start = min(a * spec.shard_size, spec.samples)
        stop = min((b + 1) * spec.shard_size, spec.samples)
        for name, n in planning.category_counts(spec, start, stop).items():
            out[name] = out.get(name, 0) + n
    return out


def add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted({*a, *b})}


def percent(done: int, total: int) -> str:
    return f"{(100.0 * done / total) if total else 100.0:.1f}%"


def is_finished(phase: str | None) -> bool:
    return phase in (BatchPhase.SUCCEEDED, BatchPhase.FAILED)


# --------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class Ledger:
    """Pods already counted, bounded: the newest ``limit`` by time, plus a watermark.

    A pod whose time is at or below ``before`` counts as seen even when its name was dropped.
    """

    entries: tuple[tuple[float, str], ...] = ()
    before: float = 0.0
    names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # a set: seen() runs once per pod per reconcile
        object.__setattr__(self, "names", frozenset(n for _, n in self.entries))

    @classmethod
    def load(cls, items: Iterable[str], before: float) -> Ledger:
        entries = []
        for item in items:
            t, _, name = item.partition(":")
            entries.append((float(t), name))
        return cls(tuple(sorted(entries)), before)

    def dump(self) -> list[str]:
        return [f"{t:.0f}:{n}" for t, n in self.entries]

    def seen(self, name: str, t: float) -> bool:
        return t <= self.before or name in self.names

    def add(self, items: Iterable[tuple[float, str]], *, limit: int) -> Ledger:
        entries = sorted({*self.entries, *items})
        before = self.before
        if len(entries) > limit:
            dropped, entries = entries[: len(entries) - limit], entries[len(entries) - limit :]
            before = max(before, dropped[-1][0])
        return Ledger(tuple(entries), before)


@dataclass(frozen=True)
class PodAccounting:
    """Result of folding the current pods into a batch's counters."""

    preemptions: int
    gpu_seconds_finished: float
    gpu_seconds_live: float
    active: int
    pending: int
    finished: Ledger
    preempted: Ledger
    new_preemptions: list[str]
    spot_gpu_seconds_finished: float = 0.0
    spot_gpu_seconds_live: float = 0.0
    quarantined: int = 0
    """Samples quarantined, as reported by pods finished since the last tick (each pod once)."""
    quarantined_categories: dict[str, int] = field(default_factory=dict)
    render_call_seconds: float = 0.0
    """Render-call seconds reported by pods finished since the last tick (each pod once, issue #25)."""
    main_thread_seconds: float = 0.0
    """Their main-thread seconds (render calls, other work, waiting for the pipeline)."""


def account_pods(
    pods: Iterable[PodFacts],
    *,
    gpus: int,
    preemptions: int,
    gpu_seconds_finished: float,
    finished: Ledger,
    preempted: Ledger,
    now: datetime,
    limit: int,
    spot_gpu_seconds_finished: float = 0.0,
    is_spot: Callable[[str], bool] | None = None,
) -> PodAccounting:
    """Count each preempted pod once and each finished pod's GPU time once.

    ``is_spot`` says whether a node is spot capacity (from its labels); the GPU time of pods on
    such nodes is also added to the spot counters.
    """
    weight = max(gpus, 0) or 1  # CPU-only workers are accounted as one device-second per second
    nowts = now.timestamp()
    new_fin: list[tuple[float, str]] = []
    new_pre: list[tuple[float, str]] = []
    live = spot_live = 0.0
    active = pending = quarantined = 0
    q_cats: dict[str, int] = {}
    render_call = main_thread = 0.0
    for f in pods:
        spot = bool(is_spot and is_spot(f.node))
        if f.preempted_at is not None and not preempted.seen(f.name, f.preempted_at):
            new_pre.append((f.preempted_at, f.name))
        if f.terminal:
            t = f.finished or nowts
            if not finished.seen(f.name, t) and f.started is not None:
                gpu_seconds_finished += max(0.0, t - f.started) * weight
                spot_gpu_seconds_finished += max(0.0, t - f.started) * weight if spot else 0.0
                new_fin.append((t, f.name))
                quarantined += f.quarantined  # issue #23 item 3: counted once, with the pod's GPU time
                for cat, n in f.quarantined_categories:
                    q_cats[cat] = q_cats.get(cat, 0) + n
                render_call += f.render_call_seconds
                main_thread += f.main_thread_seconds
        elif f.phase == "Running" and f.preempted_at is None:
            active += 1
            if f.started is not None:
                live += max(0.0, nowts - f.started) * weight
                spot_live += max(0.0, nowts - f.started) * weight if spot else 0.0
        elif f.phase == "Pending":
            pending += 1
    return PodAccounting(
        preemptions=preemptions + len(new_pre),
        gpu_seconds_finished=gpu_seconds_finished,
        gpu_seconds_live=live,
        active=active,
        pending=pending,
        finished=finished.add(new_fin, limit=limit),
        preempted=preempted.add(new_pre, limit=limit),
        new_preemptions=[n for _, n in new_pre],
        spot_gpu_seconds_finished=spot_gpu_seconds_finished,
        spot_gpu_seconds_live=spot_live,
        quarantined=quarantined,
        quarantined_categories=q_cats,
        render_call_seconds=render_call,
        main_thread_seconds=main_thread,
    )


@dataclass(frozen=True)
class PodCounts:
    """Rendering pods of one batch by scheduling state (what the autoscaler needs)."""

    established: int = 0
    running: int = 0
    pending: int = 0
    unschedulable: int = 0


def pod_counts(pods: Iterable[PodFacts], *, now: datetime, tick_seconds: float) -> PodCounts:
    """Count live pods: running (established if started a tick ago), pending, unschedulable.

    A pending pod with ``PodScheduled=False`` and reason ``Unschedulable`` waits for GPU
    capacity that may never come: it is not a worker and is reported as such.
    """
    young_after = now.timestamp() - tick_seconds
    established = running = pending = unschedulable = 0
    for pod in pods:
        if pod.deleting:
            continue
        if pod.phase == "Running":
            running += 1
            if pod.started is not None and pod.started <= young_after:
                established += 1
        elif pod.phase == "Pending":
            if pod.unschedulable:
                unschedulable += 1
            else:
                pending += 1
    return PodCounts(established, running, pending, unschedulable)


def unsettled_gpu_seconds(
    pods: Iterable[PodFacts], *, settled: Sequence[ranges.Span], shard_offset: int, job_name: str | None, gpus: int,
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
        if not pod.terminal or pod.index is None:
            continue
        if job_name is not None and pod.job not in (None, job_name):
            continue
        offset = shard_offset + pod.index
        if any(a <= offset <= b for a, b in settled):
            continue
        if pod.started is not None and pod.ended is not None:
            total += max(0.0, pod.ended - pod.started) * weight
    return total


def offsets_exited_with(pods: Iterable[PodFacts], *, exit_code: int, job_name: str, shard_offset: int
                        ) -> list[ranges.Span]:
    """Batch offsets (``shard_offset`` + completion index) of ``job_name``'s pods whose render
    container terminated with ``exit_code`` (the Job records *that* an index failed, the pods why)."""
    return ranges.union([(shard_offset + p.index, shard_offset + p.index) for p in pods
                         if p.job == job_name and p.index is not None and p.exit_code == exit_code])


def unlisted(listed: Iterable[PodFacts], remembered: Iterable[PodFacts]) -> list[PodFacts]:
    """Remembered pods the tick did not list (a listed pod's state is the newer one), once each."""
    names = {p.name for p in listed}
    out: list[PodFacts] = []
    for pod in remembered:
        if pod.name and pod.name not in names:
            names.add(pod.name)
            out.append(pod)
    return out
