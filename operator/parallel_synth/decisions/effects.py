"""What a decision asks the cluster adapter to do, in order: the effects of one reconcile.

A decision (:mod:`~parallel_synth.decisions.batch`, :mod:`~parallel_synth.decisions.dataset`)
returns its new typed status and a tuple of effects; ``cluster/reconcile.apply`` performs them
in the order given, and nothing else writes to the API. Each effect is idempotent on its own
(deterministic names: a create that finds the object is a success, a delete of a gone object too).

The status is dumped here, once (:func:`status_patch`): a JSON merge patch holding only the
fields that changed, and no patch at all when nothing but the per-tick counters moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parallel_synth.decisions.jobs import JobRequest
from synth_contract.api import RenderBatchSpec, RenderBatchStatus, SynthDatasetStatus


@dataclass(frozen=True)
class Event:
    """An Event to post about the reconciled object: ``Normal`` or ``Warning``."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class PatchStatus:
    """JSON merge patch of the reconciled object's ``status`` subresource.

    Sent with the ``resourceVersion`` the decision observed (issue #22 item 6): a decision made
    on a stale body (a lagging watch) is refused with 409, and the adapter re-reads and decides
    again. An empty patch is a fence: it writes nothing but checks that version before the
    decision's other writes. A decision's writes therefore start with its PatchStatus.
    """

    patch: dict[str, Any]


@dataclass(frozen=True)
class CreateBatch:
    """A RenderBatch of the dataset to create (owned by the dataset, labelled with its index)."""

    name: str
    index: int
    spec: RenderBatchSpec


@dataclass(frozen=True)
class ScaleBatch:
    """Set a RenderBatch's ``spec.parallelism``."""

    name: str
    parallelism: int


@dataclass(frozen=True)
class DeleteBatch:
    name: str


@dataclass(frozen=True)
class CreateJob:
    """The Indexed Job of a batch attempt; ``announce`` is posted only if it was really created."""

    request: JobRequest
    announce: Event | None = None


@dataclass(frozen=True)
class CreateIndexJob:
    """The dataset's index Job; ``announce`` is posted only if it was really created."""

    name: str
    announce: Event | None = None


@dataclass(frozen=True)
class ScaleJob:
    """Change a running Job's parallelism in place (bounded by its completions); ``suspend``
    pauses (True) or resumes (False) a Job that Kueue does not manage (None: left as it is)."""

    name: str
    parallelism: int
    completions: int
    suspend: bool | None = None


@dataclass(frozen=True)
class DeleteJob:
    name: str


@dataclass(frozen=True)
class PostEvent:
    event: Event


Effect = (PatchStatus | CreateBatch | ScaleBatch | DeleteBatch | CreateJob | CreateIndexJob | ScaleJob | DeleteJob
          | PostEvent)

VOLATILE = frozenset({"gpuSeconds", "spotGpuSeconds", "gpuSecondsFinished", "spotGpuSecondsFinished",
                      "cost", "eta", "samplesPerDay"})
"""Status fields that change on every tick while pods run: written along with real changes only."""


def status_patch(
    old: SynthDatasetStatus | RenderBatchStatus, new: SynthDatasetStatus | RenderBatchStatus
) -> dict[str, Any] | None:
    """Merge patch from ``old`` to ``new``; None if nothing but VOLATILE fields moved.

    Fields ``new`` no longer holds are set to None (removed by the merge patch). A status never
    written (parsed from nothing) gets every field, defaults included, so the printer columns
    show e.g. the ``Pending`` phase from the first write on.
    """
    before = old.wire() if old.model_fields_set else {}
    after = new.wire()
    if _strip(before) == _strip(after):
        return None
    return merge_diff(before, after)


def merge_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``before`` into ``after``, at every depth.

    A key gone from a nested object is sent as null (issue #22 item 12: ``workers.admitted``
    stayed after ``spec.queue`` was removed, because only top-level keys were cleared); lists
    are replaced whole, as merge patches do.
    """
    patch: dict[str, Any] = {}
    for k, v in after.items():
        b = before.get(k)
        if isinstance(v, dict) and isinstance(b, dict):
            sub = merge_diff(b, v)
            if sub:
                patch[k] = sub
        elif k not in before or b != v:
            patch[k] = v
    patch.update({k: None for k in before if k not in after})
    return patch


def ordered(patch: dict[str, Any] | None, writes: list[Effect], after: list[Effect]) -> tuple[Effect, ...]:
    """A decision's effects: the status patch first (a fence when there is no patch but other
    writes follow), then ``writes`` (creates, scales, deletes), then ``after`` (events)."""
    head: list[Effect] = []
    if patch is not None:
        head.append(PatchStatus(patch))
    elif writes:
        head.append(PatchStatus({}))
    return (*head, *writes, *after)


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in VOLATILE}


def events_of(effects: tuple[Effect, ...]) -> list[Event]:
    """Every Event the effects may post (announces included), in order."""
    out: list[Event] = []
    for e in effects:
        if isinstance(e, PostEvent):
            out.append(e.event)
        elif isinstance(e, CreateJob | CreateIndexJob) and e.announce is not None:
            out.append(e.announce)
    return out
