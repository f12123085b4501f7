"""Status aggregation: Job and Pod state into RenderBatch status, batches into dataset status.

Pure functions (time is an argument). Everything a status holds is bounded: shard sets are
compact ranges, pods are remembered in bounded ledgers with a watermark, finished batches are
folded into totals. The handlers write what these functions return, and only when it changed.

Hook for autoscaling/cost (issue #6): :func:`fill_rates_and_cost` is called last on every dataset
status computed here; it receives the whole status and the spec and currently fills nothing but
the GPU-hours. Throughput, ETA, cost and projected cost belong there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from parallel_synth.decisions.jobs import JobProgress
from synth_contract import planning, ranges
from synth_contract.api import BatchPhase, Condition, SynthDatasetSpec

# --------------------------------------------------------------------------- small helpers


def rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def set_condition(
    conditions: Sequence[dict[str, Any]],
    kind: str,
    status: bool | str,
    reason: str,
    message: str,
    *,
    now: datetime,
    max_message: int = 1024,
) -> list[dict[str, Any]]:
    """Conditions with one set; ``lastTransitionTime`` moves only when the status flips."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    out: list[dict[str, Any]] = []
    found = False
    for c in conditions:
        if c.get("type") != kind:
            out.append(dict(c))
            continue
        found = True
        ltt = c.get("lastTransitionTime") if c.get("status") == value else rfc3339(now)
        out.append(Condition(type=kind, status=value, reason=reason, message=message[:max_message],
                             last_transition_time=ltt or rfc3339(now)).wire())
    if not found:
        out.append(Condition(type=kind, status=value, reason=reason, message=message[:max_message],
                             last_transition_time=rfc3339(now)).wire())
    return out


def condition_status(conditions: Iterable[dict[str, Any]], kind: str) -> str | None:
    for c in conditions:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


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


# --------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class PodFacts:
    """What matters about one rendering pod."""

    name: str
    started: float | None  # epoch seconds
    finished: float | None  # epoch seconds; None while running
    terminal: bool
    preempted_at: float | None  # when DisruptionTarget became True (or exit 143)
    phase: str
    node: str = ""  # spec.nodeName; "" before scheduling


def _epoch(text: str | None) -> float | None:
    t = parse_time(text)
    return t.timestamp() if t else None


def pod_node(pod: dict[str, Any]) -> str:
    """The node a pod was scheduled to ("" before scheduling)."""
    return str((pod.get("spec") or {}).get("nodeName") or "")


def pod_facts(pod: dict[str, Any]) -> PodFacts:
    """Extract start/finish/preemption from a Pod dict."""
    meta = pod.get("metadata") or {}
    st = pod.get("status") or {}
    phase = st.get("phase") or "Pending"
    finished = None
    exit_143_at = None
    for cs in st.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            finished = _epoch(term.get("finishedAt")) or finished
            if term.get("exitCode") == 143:
                exit_143_at = _epoch(term.get("finishedAt"))
    preempted_at = None
    for c in st.get("conditions") or []:
        if c.get("type") == "DisruptionTarget" and c.get("status") == "True":
            preempted_at = _epoch(c.get("lastTransitionTime")) or _epoch(meta.get("deletionTimestamp")) or 0.0
    if preempted_at is None and exit_143_at is not None:
        preempted_at = exit_143_at
    terminal = phase in ("Succeeded", "Failed")
    if terminal and finished is None:
        finished = _epoch(meta.get("deletionTimestamp")) or _epoch(st.get("startTime"))
    return PodFacts(
        name=str(meta.get("name", "")),
        started=_epoch(st.get("startTime")),
        finished=finished,
        terminal=terminal,
        preempted_at=preempted_at,
        phase=phase,
        node=pod_node(pod),
    )


@dataclass(frozen=True)
class Ledger:
    """Pods already counted, bounded: the newest ``limit`` by time, plus a watermark.

    A pod whose time is at or below ``before`` counts as seen even when its name was dropped.
    """

    entries: tuple[tuple[float, str], ...] = ()
    before: float = 0.0

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
        return t <= self.before or any(n == name for _, n in self.entries)

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


def account_pods(
    pods: Iterable[dict[str, Any]],
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
    active = pending = 0
    for pod in pods:
        f = pod_facts(pod)
        spot = bool(is_spot and is_spot(f.node))
        if f.preempted_at is not None and not preempted.seen(f.name, f.preempted_at):
            new_pre.append((f.preempted_at, f.name))
        if f.terminal:
            t = f.finished or nowts
            if not finished.seen(f.name, t) and f.started is not None:
                gpu_seconds_finished += max(0.0, t - f.started) * weight
                spot_gpu_seconds_finished += max(0.0, t - f.started) * weight if spot else 0.0
                new_fin.append((t, f.name))
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
    )


# --------------------------------------------------------------------------- batch status


def batch_counts(
    status: dict[str, Any],
    *,
    spec: SynthDatasetSpec,
    shard_start: int,
    shard_count: int,
    completed: list[ranges.Span],
    failed: list[ranges.Span],
) -> dict[str, Any]:
    """The count fields of a batch status for its committed and failed offsets."""
    done = ranges.count(completed)
    glob = ranges.shift(completed, shard_start)
    return {
        **status,
        "completedShards": ranges.format_spans(completed),
        "failedShards": ranges.format_spans(failed),
        "shardsDone": done,
        "samplesCompleted": samples_in(spec, glob),
        "progress": f"{done}/{shard_count}",
    }


def progress_with_job(prior: list[ranges.Span], job: JobProgress | None, shard_count: int) -> list[ranges.Span]:
    """Committed offsets: those recorded in status plus those the current Job reports."""
    done = ranges.union(prior, job.completed if job else [])
    return ranges.clip(done, 0, shard_count - 1)


def is_finished(phase: str | None) -> bool:
    return phase in (BatchPhase.SUCCEEDED, BatchPhase.FAILED)


# --------------------------------------------------------------------------- dataset status


def fill_rates_and_cost(status: dict[str, Any], spec: SynthDatasetSpec, *, now: datetime) -> dict[str, Any]:
    """HOOK for issue #6: throughput (samplesPerDay), ETA and cost go here.

    Called last for every dataset status the operator computes, with the aggregated counters
    already in place (``samples``, ``shards``, ``gpuSeconds``, ``spotGpuSeconds``, ``workers``).
    """
    cost = dict(status.get("cost") or {})
    gpu_seconds = float(status.get("gpuSeconds") or 0.0)
    spot = float(status.get("spotGpuSeconds") or 0.0)
    cost["gpuHours"] = round(gpu_seconds / 3600.0, 4)
    cost["spotGpuHours"] = round(spot / 3600.0, 4)
    cost["onDemandGpuHours"] = round((gpu_seconds - spot) / 3600.0, 4)
    return {**status, "cost": cost}


def percent(done: int, total: int) -> str:
    return f"{(100.0 * done / total) if total else 100.0:.1f}%"
