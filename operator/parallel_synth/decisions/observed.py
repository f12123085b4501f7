"""The one parser of what the API returns: Pods, Jobs and RenderBatch bodies into typed facts.

Decisions never read an API dict; ``cluster/reconcile`` (and the simulator, which may also
build these dataclasses directly) parses each object here once. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from synth_contract import ranges
from synth_contract.api import GROUP, Condition, RenderBatchSpec, RenderBatchStatus
from synth_contract.times import epoch

CONTAINER = "render"
"""The rendering container of a batch pod (its exit code is the worker's)."""
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
"""Annotation (and label) with a pod's index in its Indexed Job."""
JOB_NAME_KEYS = ("batch.kubernetes.io/job-name", "job-name")
ANNOTATION_SHARD_OFFSET = f"{GROUP}/shard-offset"
LABEL_INDEX = f"{GROUP}/batch-index"
LABEL_QUEUE = "kueue.x-k8s.io/queue-name"


_C = TypeVar("_C", Mapping[str, Any], Condition)


def condition(conditions: Iterable[_C] | None, kind: str, *, true_only: bool = False) -> _C | None:
    """The condition of type ``kind`` (only a True one with ``true_only``), in an API object's
    conditions (dicts) or in a typed status (:class:`~synth_contract.api.Condition`): the one lookup."""
    for c in conditions or []:
        typ, status = (c.type, c.status) if isinstance(c, Condition) else (c.get("type"), c.get("status"))
        if typ == kind and (not true_only or status == "True"):
            return c
    return None


@dataclass(frozen=True)
class PodFacts:
    """What matters about one rendering pod (times in epoch seconds)."""

    name: str
    phase: str = "Pending"
    node: str = ""
    """``spec.nodeName``; "" before scheduling."""
    started: float | None = None
    finished: float | None = None
    """When its containers terminated (for a terminal pod without one: deletion or start time)."""
    preempted_at: float | None = None
    """When ``DisruptionTarget`` became True, or when the renderer exited 143 (SIGTERM)."""
    deleting: bool = False
    unschedulable: bool = False
    """Pending with ``PodScheduled=False`` reason ``Unschedulable`` (no capacity)."""
    job: str | None = None
    """Name of the Job that owns it."""
    index: int | None = None
    """Completion index in its Indexed Job."""
    exit_code: int | None = None
    """Exit code of the render container, once terminated."""
    ended: float | None = None
    """Latest ``finishedAt`` of its terminated containers (None while any still runs)."""

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def pod_facts(pod: Mapping[str, Any]) -> PodFacts:
    """Parse a Pod dict (as the API or the pod watch returns it)."""
    meta = pod.get("metadata") or {}
    st = pod.get("status") or {}
    labels = meta.get("labels") or {}
    phase = st.get("phase") or "Pending"
    finished = exit_143_at = exit_code = None
    ends: list[float | None] = []
    for cs in st.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        ends.append(epoch(term.get("finishedAt")) if term else None)
        if term:
            finished = epoch(term.get("finishedAt")) or finished
            if term.get("exitCode") == 143:
                exit_143_at = epoch(term.get("finishedAt"))
            if cs.get("name") == CONTAINER:
                exit_code = term.get("exitCode")
    preempted_at = None
    disrupted = condition(st.get("conditions"), "DisruptionTarget", true_only=True)
    if disrupted is not None:
        preempted_at = epoch(disrupted.get("lastTransitionTime")) or epoch(meta.get("deletionTimestamp")) or 0.0
    if preempted_at is None and exit_143_at is not None:
        preempted_at = exit_143_at
    started = epoch(st.get("startTime"))
    if phase in ("Succeeded", "Failed") and finished is None:
        finished = epoch(meta.get("deletionTimestamp")) or started
    scheduled = condition(st.get("conditions"), "PodScheduled")
    raw_index = (meta.get("annotations") or {}).get(INDEX_KEY, labels.get(INDEX_KEY))
    return PodFacts(
        name=str(meta.get("name", "")),
        phase=phase,
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
        started=started,
        finished=finished,
        preempted_at=preempted_at,
        deleting=bool(meta.get("deletionTimestamp")),
        unschedulable=bool(scheduled and scheduled.get("status") == "False"
                           and scheduled.get("reason") == "Unschedulable"),
        job=next((str(labels[k]) for k in JOB_NAME_KEYS if k in labels), None),
        index=int(raw_index) if raw_index is not None else None,
        exit_code=int(exit_code) if exit_code is not None else None,
        ended=max((e for e in ends if e is not None), default=None),
    )


@dataclass(frozen=True)
class JobFacts:
    """A Job's spec and progress, in batch offsets (completion index + ``shard_offset``)."""

    name: str
    parallelism: int = 0
    completions: int = 0
    shard_offset: int = 0
    completed: list[ranges.Span] = field(default_factory=list)
    failed: list[ranges.Span] = field(default_factory=list)
    failed_pods: int = 0
    active: int = 0
    finished: str | None = None
    """"Complete", "Failed" or None (running)."""
    reason: str = ""
    message: str = ""
    queue: str | None = None
    """Kueue's queue label: the Job is managed by Kueue when set."""
    suspended: bool = False
    suspended_reason: str = ""
    suspended_message: str = ""


def job_facts(job: Mapping[str, Any]) -> JobFacts:
    """Parse a Job dict: completed/failed indexes, pod counts, the terminal and Suspended conditions."""
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    st = job.get("status") or {}
    offset = int((meta.get("annotations") or {}).get(ANNOTATION_SHARD_OFFSET, "0"))
    finished, reason, message = None, "", ""
    for kind in ("Complete", "Failed"):
        cond = condition(st.get("conditions"), kind, true_only=True)
        if cond is not None:
            finished, reason, message = kind, str(cond.get("reason", "")), str(cond.get("message", ""))
            break
    suspended = condition(st.get("conditions"), "Suspended", true_only=True) or {}
    queue = (meta.get("labels") or {}).get(LABEL_QUEUE)
    return JobFacts(
        name=str(meta.get("name", "")),
        parallelism=int(spec.get("parallelism") or 0),
        completions=int(spec.get("completions") or 0),
        shard_offset=offset,
        completed=ranges.shift(ranges.parse(st.get("completedIndexes")), offset),
        failed=ranges.shift(ranges.parse(st.get("failedIndexes")), offset),
        failed_pods=int(st.get("failed") or 0),
        active=int(st.get("active") or 0),
        finished=finished,
        reason=reason,
        message=message,
        queue=str(queue) if queue else None,
        suspended=bool(spec.get("suspend")),
        suspended_reason=str(suspended.get("reason") or ""),
        suspended_message=str(suspended.get("message") or ""),
    )


@dataclass(frozen=True)
class ObservedBatch:
    """A RenderBatch as listed: spec and status typed, its index label, whether it is being deleted."""

    name: str
    spec: RenderBatchSpec
    status: RenderBatchStatus = field(default_factory=RenderBatchStatus)
    index: int | None = None
    deleting: bool = False


def observed_batch(body: Mapping[str, Any]) -> ObservedBatch:
    """Parse a RenderBatch body (spec, status, the batch-index label, deletionTimestamp)."""
    meta = body.get("metadata") or {}
    raw = (meta.get("labels") or {}).get(LABEL_INDEX)
    return ObservedBatch(
        name=str(meta["name"]),
        spec=RenderBatchSpec.model_validate(body.get("spec") or {}),
        status=RenderBatchStatus.model_validate(body.get("status") or {}),
        index=int(raw) if raw is not None else None,
        deleting=bool(meta.get("deletionTimestamp")),
    )


def pods_facts(pods: Sequence[Mapping[str, Any]]) -> list[PodFacts]:
    return [pod_facts(p) for p in pods]
