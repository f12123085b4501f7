"""The one parser of what the API returns: Pods, Jobs and RenderBatch bodies into typed facts.

``cluster/reconcile`` and the pod watch parse each object here once; the decisions read only
the facts (:mod:`parallel_synth.decisions.facts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parallel_synth.decisions.facts import (
    ANNOTATION_SHARD_OFFSET,
    CONTAINER,
    INDEX_KEY,
    JOB_NAME_KEYS,
    LABEL_INDEX,
    LABEL_QUEUE,
    JobFacts,
    ObservedBatch,
    PodFacts,
    condition,
)
from synth_contract import ranges
from synth_contract.api import RenderBatchSpec, RenderBatchStatus
from synth_contract.times import epoch


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
        at = epoch(term.get("finishedAt")) if term else None
        ends.append(at)
        if term:
            finished = at or finished
            if term.get("exitCode") == 143:
                exit_143_at = at
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
