"""What the operator observes, as typed facts: Pods, Jobs and RenderBatches the decisions read.

The decisions never read an API dict; ``cluster/observe`` parses each object into these once
(and the fleet simulator builds them directly). Pure data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from synth_contract import ranges
from synth_contract.api import GROUP, Condition, RenderBatchSpec, RenderBatchStatus

CONTAINER = "render"
"""The rendering container of a batch pod (its exit code is the worker's)."""
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
"""Annotation (and label) with a pod's index in its Indexed Job."""
JOB_NAME_KEYS = ("batch.kubernetes.io/job-name", "job-name")
ANNOTATION_SHARD_OFFSET = f"{GROUP}/shard-offset"
LABEL_INDEX = f"{GROUP}/batch-index"
LABEL_QUEUE = "kueue.x-k8s.io/queue-name"
LABEL_BATCH_UID = f"{GROUP}/batch-uid"
"""On render pods: the uid of the RenderBatch whose Job made them (issue #22 item 1: a batch
re-created under the same name never counts the pods of its predecessor)."""


TERMINATION_MESSAGE = "/dev/termination-log"
"""What a render pod that committed its shard writes there (Kubernetes' default
``terminationMessagePath``; the kubelet copies it into ``state.terminated.message``): one JSON
object, a subset of the shard's manifest, ``{"outcome": "committed", "shard": N, "samples": kept,
"quarantined": {"samples": n, "categories": {name: n}}, "timings": {"renderCallSeconds": s,
"mainThreadSeconds": s}}``. The operator counts a shard's quarantined samples apart from the kept
ones (issue #23 item 3) and sums the timings into ``status.renderBusyRatio`` (issue #25); a pod
that says nothing (an older renderer, a shard already committed by another pod) counts as all
kept and adds no timings."""
COMMITTED = "committed"


_C = TypeVar("_C", Mapping[str, Any], Condition)


def condition(conditions: Iterable[_C] | None, kind: str, *, true_only: bool = False) -> _C | None:
    """The condition of type ``kind`` (only a True one with ``true_only``), in an API object's
    conditions (dicts) or in a typed status (:class:`~synth_contract.api.Condition`): the one lookup."""
    for c in conditions or []:
        if isinstance(c, Condition):
            typ, status = c.type, c.status
        elif isinstance(c, Mapping):
            typ, status = c.get("type"), c.get("status")
        else:  # a malformed entry in a status someone else wrote: not a condition
            continue
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
    """When the cluster took the pod away: ``DisruptionTarget`` became True, or a node-loss reason
    (``cluster/observe._disrupted_at``). A SIGTERM exit (143) alone is not a preemption."""
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
    batch_uid: str | None = None
    """The :data:`LABEL_BATCH_UID` label (None on pods made before it existed)."""
    quarantined: int = 0
    """Samples this pod committed to the quarantine (its termination message, see
    :data:`TERMINATION_MESSAGE`); 0 when it committed nothing or did not say."""
    quarantined_categories: tuple[tuple[str, int], ...] = ()
    """The same per category."""
    render_call_seconds: float = 0.0
    """Seconds its worker's main thread spent inside Cycles' render calls (termination message)."""
    main_thread_seconds: float = 0.0
    """All of its worker's main-thread seconds over the shard (render calls, other work, waiting)."""

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


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
    owner_uid: str | None = None
    """The uid of its controller (``ownerReferences``); None when it has none."""


def owned_by(owner_uid: str | None, uid: str | None) -> bool:
    """Whether a child whose controller is ``owner_uid`` belongs to the object ``uid`` (issue #22
    item 1: adopt by owner uid only, as Kueue does; a name or label match is not enough). An
    unknown side (no uid recorded, e.g. the simulator's objects) does not exclude."""
    return not owner_uid or not uid or owner_uid == uid


@dataclass(frozen=True)
class ObservedBatch:
    """A RenderBatch as listed: spec and status typed, its index label, whether it is being deleted."""

    name: str
    spec: RenderBatchSpec
    status: RenderBatchStatus = field(default_factory=RenderBatchStatus)
    index: int | None = None
    deleting: bool = False
    owner_uid: str | None = None
    """The uid of the SynthDataset that owns it (``ownerReferences``)."""
