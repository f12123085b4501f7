"""The one parser of what the API returns: Pods, Jobs and RenderBatch bodies into typed facts.

``cluster/reconcile`` and the pod watch parse each object here once; the decisions read only
the facts (:mod:`parallel_synth.decisions.facts`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from parallel_synth.decisions.facts import (
    ANNOTATION_SHARD_OFFSET,
    COMMITTED,
    CONTAINER,
    INDEX_KEY,
    JOB_NAME_KEYS,
    LABEL_BATCH_UID,
    LABEL_INDEX,
    LABEL_QUEUE,
    JobFacts,
    ObservedBatch,
    PodFacts,
    condition,
)
from synth_contract import ranges
from synth_contract.api import RenderBatchSpec, RenderBatchStatus
from synth_contract.exitcodes import EXIT_OK
from synth_contract.times import epoch

NODE_LOSS_REASONS = frozenset({"NodeLost", "Evicted", "Terminated", "Shutdown"})
"""``status.reason`` of a pod the node took down with it: the node controller (``NodeLost``), the
kubelet's eviction (``Evicted``) and its graceful node shutdown (``Terminated``, ``Shutdown``)."""


def _disrupted_at(meta: Mapping[str, Any], st: Mapping[str, Any], *, ended: float | None,
                  started: float | None) -> float | None:
    """When the pod was preempted (issue #22 item 3), or None: only the cluster taking it away counts.

    ``DisruptionTarget=True`` (scheduler preemption, taint eviction after node loss, the eviction
    API a spot drain uses, pod GC of a vanished node, kubelet shutdown) or a node-loss reason.
    A pod that exits 143 because the Job controller deleted it (scale-down, ``suspend``, a
    deleted Job) or Kueue suspended its Job is *not* a preemption: Kueue evictions are counted
    from the Job (``decisions/kueue.eviction``), not from its pods' exit codes.
    """
    disrupted = condition(st.get("conditions"), "DisruptionTarget", true_only=True)
    if disrupted is not None:
        at = epoch(disrupted.get("lastTransitionTime")) or epoch(meta.get("deletionTimestamp"))
    elif st.get("reason") in NODE_LOSS_REASONS:
        at = epoch(meta.get("deletionTimestamp"))
    else:
        return None
    return at or ended or started or 0.0


def quarantine_report(message: str) -> tuple[int, tuple[tuple[str, int], ...]]:
    """Quarantined samples (total, per category) in a render pod's termination message
    (:data:`~parallel_synth.decisions.facts.TERMINATION_MESSAGE`); (0, ()) for anything else."""
    try:
        doc = json.loads(message[:8192])
    except ValueError:
        return 0, ()
    if not isinstance(doc, dict) or doc.get("outcome") != COMMITTED or not isinstance(doc.get("quarantined"), dict):
        return 0, ()
    q = doc["quarantined"]
    cats = q.get("categories") if isinstance(q.get("categories"), dict) else {}
    per = tuple(sorted((str(k), int(v)) for k, v in cats.items()
                       if isinstance(v, int) and not isinstance(v, bool) and v > 0))
    total = q.get("samples")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        total = sum(n for _, n in per)
    return total, per


def busy_report(message: str) -> tuple[float, float]:
    """(render-call seconds, main-thread seconds) in a committed render pod's termination message;
    (0, 0) for anything else (issue #25: ``status.renderBusyRatio`` is the first over the second)."""
    try:
        doc = json.loads(message[:8192])
    except ValueError:
        return 0.0, 0.0
    t = doc.get("timings") if isinstance(doc, dict) and doc.get("outcome") == COMMITTED else None
    if not isinstance(t, dict):
        return 0.0, 0.0
    render, main = t.get("renderCallSeconds"), t.get("mainThreadSeconds")
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1e9 for v in (render, main))
    if not ok or render > main:  # type: ignore[operator]
        return 0.0, 0.0
    return float(render), float(main)  # type: ignore[arg-type]


def controller_uid(meta: Mapping[str, Any]) -> str | None:
    """The uid of an object's controller (its ``controller: true`` owner reference)."""
    refs = [r for r in meta.get("ownerReferences") or [] if isinstance(r, Mapping)]
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return str(ref["uid"]) if ref is not None and ref.get("uid") else None


def pod_facts(pod: Mapping[str, Any]) -> PodFacts:
    """Parse a Pod dict (as the API or the pod watch returns it)."""
    meta = pod.get("metadata") or {}
    st = pod.get("status") or {}
    labels = meta.get("labels") or {}
    phase = st.get("phase") or "Pending"
    finished = exit_code = None
    report: tuple[int, tuple[tuple[str, int], ...]] = (0, ())
    busy = (0.0, 0.0)
    ends: list[float | None] = []
    for cs in st.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        at = epoch(term.get("finishedAt")) if term else None
        ends.append(at)
        if term:
            finished = at or finished
            if cs.get("name") == CONTAINER:
                exit_code = term.get("exitCode")
                if exit_code == EXIT_OK and term.get("message"):
                    report = quarantine_report(term["message"])
                    busy = busy_report(term["message"])
    return_code = int(exit_code) if exit_code is not None else None
    started = epoch(st.get("startTime"))
    preempted_at = _disrupted_at(meta, st, ended=finished, started=started)
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
        exit_code=return_code,
        ended=max((e for e in ends if e is not None), default=None),
        batch_uid=str(labels[LABEL_BATCH_UID]) if labels.get(LABEL_BATCH_UID) else None,
        quarantined=report[0],
        quarantined_categories=report[1],
        render_call_seconds=busy[0],
        main_thread_seconds=busy[1],
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
        owner_uid=controller_uid(meta),
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
        owner_uid=controller_uid(meta),
    )
