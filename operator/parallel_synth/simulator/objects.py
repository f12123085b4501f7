"""The simulated API objects: Jobs and their pods, and what ``GET``/``LIST`` return for them.

:mod:`.cluster` runs them; this module holds their state and writes the dicts the API server
would return (``Job.body``, :func:`pod_body`), which the operator's own readers parse.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from typing import Any

from parallel_synth.decisions.cost import SPOT_LABELS, Capacity
from parallel_synth.decisions.jobs import ANNOTATION_SHARD_OFFSET, CONTAINER
from parallel_synth.decisions.kueue import LABEL_QUEUE
from synth_contract import ranges
from synth_contract.api import LABEL_BATCH

WAITING, PROVISIONING, RUNNING, GONE = range(4)
EXIT_OK, EXIT_ERROR = 0, 1
JOB_NAME = "batch.kubernetes.io/job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""The label and annotation the Job controller puts on the pods it creates."""
NODES: dict[str, dict[str, str]] = {
    Capacity.SPOT.value: dict([next(iter(SPOT_LABELS.items()))]),
    Capacity.ON_DEMAND.value: {},
}
"""One simulated node name per capacity type (the pool's), with the labels the cost code reads."""


class Pod:
    """A rendering pod: one index of a Job, ``left`` samples to render."""

    __slots__ = ("body", "capacity", "disrupted", "duration", "ended", "exit_code", "index", "job", "left", "name",
                 "started", "state", "version")

    def __init__(self, job: Job, index: int, left: int, serial: int) -> None:
        self.job = job
        self.index = index
        self.left = left
        self.name = f"{job.name}-{index}-{serial}"
        self.capacity = job.capacity
        self.state = WAITING
        self.started = 0.0
        self.ended = 0.0
        self.duration = 0.0  # render time of the samples left (start-up excluded)
        self.version = 0
        self.exit_code: int | None = None
        self.disrupted = False
        self.body: dict[str, Any] | None = None


class Job:
    """An Indexed Job of one batch attempt: index ``i`` renders shard ``shard_start + i``."""

    __slots__ = ("active", "admitted", "batch", "capacity", "completed", "completions", "created", "done_spans",
                 "failed", "failed_pods", "finished", "index_failures", "max_failed", "name", "offset", "parallelism",
                 "pending", "per_index", "queued", "reason", "requested", "shard_start", "suspended")

    def __init__(self, manifest: dict[str, Any], batch: BatchPods, created: int) -> None:
        meta, spec = manifest["metadata"], manifest["spec"]
        pod = spec["template"]["spec"]
        args = pod["containers"][0]["args"]
        self.name = str(meta["name"])
        self.batch = batch
        self.created = created
        self.offset = int(meta["annotations"][ANNOTATION_SHARD_OFFSET])
        self.shard_start = int(args[args.index("--shard-start") + 1])
        self.completions = int(spec["completions"])
        self.parallelism = int(spec["parallelism"])
        self.requested = self.parallelism
        self.per_index = int(spec.get("backoffLimitPerIndex") or 0)
        self.max_failed = int(spec.get("maxFailedIndexes") or self.completions)
        required = ((pod.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution")
        self.capacity = Capacity.ON_DEMAND.value if required else Capacity.SPOT.value
        self.queued = LABEL_QUEUE in (meta.get("labels") or {})
        self.suspended = bool(spec.get("suspend"))
        self.admitted = 0  # admission order under Kueue (0: not admitted)
        self.pending: deque[int] = deque(range(self.completions))
        self.active: list[Pod] = []
        self.completed: set[int] = set()
        self.done_spans: list[ranges.Span] = []
        self.failed: set[int] = set()
        self.index_failures: dict[int, int] = {}
        self.failed_pods = 0
        self.finished: str | None = None
        self.reason = ""

    def body(self) -> dict[str, Any]:
        """The Job as ``GET`` returns it (what ``job_progress`` and ``kueue.admission`` read)."""
        conds = []
        if self.finished:
            conds.append({"type": self.finished, "status": "True", "reason": self.reason, "message": self.reason})
        elif self.suspended:
            conds.append({"type": "Suspended", "status": "True", "reason": self.reason or "JobSuspended",
                          "message": "waiting for Kueue admission" if not self.reason else "evicted by Kueue"})
        labels = {LABEL_BATCH: self.batch.name, **({LABEL_QUEUE: "simulated"} if self.queued else {})}
        return {
            "metadata": {"name": self.name, "labels": labels, "annotations": {ANNOTATION_SHARD_OFFSET: str(self.offset)}},
            "spec": {"parallelism": self.parallelism, "completions": self.completions, "suspend": self.suspended},
            "status": {
                "completedIndexes": ranges.format_spans(self.done_spans),
                "failedIndexes": ranges.format_spans(ranges.normalise((i, i) for i in self.failed)),
                "failed": self.failed_pods,
                "active": len(self.active),
                "ready": sum(p.state == RUNNING for p in self.active),
                "conditions": conds,
            },
        }


class BatchPods:
    """What the cluster and the bucket hold for one RenderBatch: its pods, commits and checkpoints."""

    __slots__ = ("committed", "left", "name", "pending_gpu", "pods", "version")

    def __init__(self, name: str) -> None:
        self.name = name
        self.pods: list[Pod] = []  # as ``list Pods -l batch=name`` answers
        self.committed: set[int] = set()  # global shards committed
        self.left: dict[int, int] = {}  # global shard -> samples still to render (its checkpoint)
        self.pending_gpu: dict[int, float] = {}  # GPU-seconds of interrupted attempts, by shard
        self.version = 0  # bumped whenever its Jobs or pods change (what a reconcile would see)


def add_span(spans: list[ranges.Span], n: int) -> None:
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


def pod_body(pod: Pod, stamp: Callable[[float], str]) -> dict[str, Any]:
    """The pod as ``list Pods`` returns it (cached until its state changes)."""
    if pod.body is not None:
        return pod.body
    job = pod.job
    status: dict[str, Any]
    if pod.state == WAITING:
        status = {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
    elif pod.state == PROVISIONING:
        status = {"phase": "Pending"}
    else:
        status = {"phase": "Running", "startTime": stamp(pod.started)}
        if pod.state == GONE:
            status["phase"] = "Succeeded" if pod.exit_code == EXIT_OK else "Failed"
            finished = stamp(pod.ended)
            status["containerStatuses"] = [
                {"name": CONTAINER, "state": {"terminated": {"exitCode": pod.exit_code, "finishedAt": finished}}}]
            if pod.disrupted:
                status["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                         "reason": "DeletionByPodGC", "lastTransitionTime": finished}]
    meta = {"name": pod.name, "labels": {LABEL_BATCH: job.batch.name, JOB_NAME: job.name},
            "annotations": {COMPLETION_INDEX: str(pod.index)}}
    spec = {"nodeName": pod.capacity} if pod.state in (RUNNING, GONE) else {}
    pod.body = {"metadata": meta, "spec": spec, "status": status}
    return pod.body
