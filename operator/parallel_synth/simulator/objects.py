"""The simulated API objects: Jobs and their pods, and what the operator observes of them.

:mod:`.cluster` runs them; this module holds their state and gives the facts the operator's
parser (:mod:`parallel_synth.decisions.facts`) would read from the API's answers: ``JobFacts``
(:meth:`Job.facts`) and ``PodFacts`` (:func:`pod_facts`), times in whole seconds as the API
writes them.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any

from parallel_synth.decisions.cost import SPOT_LABELS, Capacity
from parallel_synth.decisions.facts import ANNOTATION_SHARD_OFFSET, LABEL_QUEUE, JobFacts, PodFacts
from synth_contract import ranges
from synth_contract.exitcodes import EXIT_OK, EXIT_SIGTERM

WAITING, PROVISIONING, RUNNING, GONE = range(4)
QUEUE = "simulated"
"""The Kueue queue of a dataset simulated under a quota."""
NODES: dict[str, dict[str, str]] = {
    Capacity.SPOT.value: dict([next(iter(SPOT_LABELS.items()))]),
    Capacity.ON_DEMAND.value: {},
}
"""One simulated node name per capacity type (the pool's), with the labels the cost code reads."""


class Pod:
    """A rendering pod: one index of a Job, ``left`` samples to render."""

    __slots__ = ("capacity", "disrupted", "duration", "ended", "exit_code", "facts", "index", "job", "left",
                 "name", "started", "state", "version")

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
        self.facts: PodFacts | None = None  # what the operator observes (until the state changes)


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

    def facts(self, t0: float) -> JobFacts:
        """The Job as the operator observes it (``job_facts`` of what ``GET`` returns)."""
        waiting = self.suspended and not self.finished
        return JobFacts(
            name=self.name,
            parallelism=self.parallelism,
            completions=self.completions,
            shard_offset=self.offset,
            completed=ranges.shift(self.done_spans, self.offset),
            failed=ranges.shift(ranges.normalise((i, i) for i in self.failed), self.offset),
            failed_pods=self.failed_pods,
            active=len(self.active),
            finished=self.finished,
            reason=self.reason if self.finished else "",
            message=self.reason if self.finished else "",
            queue=QUEUE if self.queued else None,
            suspended=self.suspended,
            suspended_reason=(self.reason or "JobSuspended") if waiting else "",
            suspended_message=("evicted by Kueue" if self.reason else "waiting for Kueue admission") if waiting else "",
        )


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


def pod_facts(pod: Pod, t0: float) -> PodFacts:
    """The pod as the operator observes it (``pod_facts`` of what ``list Pods`` returns)."""
    if pod.facts is not None:
        return pod.facts
    started = ended = preempted = None
    phase = "Pending"
    if pod.state in (RUNNING, GONE):
        phase, started = "Running", float(int(t0 + pod.started))  # the API's times are whole seconds
    if pod.state == GONE:
        phase, ended = ("Succeeded" if pod.exit_code == EXIT_OK else "Failed"), float(int(t0 + pod.ended))
        preempted = ended if pod.disrupted or pod.exit_code == EXIT_SIGTERM else None
    pod.facts = PodFacts(
        name=pod.name, phase=phase, node=pod.capacity if started is not None else "", started=started,
        finished=ended, preempted_at=preempted, unschedulable=pod.state == WAITING, job=pod.job.name,
        index=pod.index, exit_code=pod.exit_code, ended=ended)
    return pod.facts
