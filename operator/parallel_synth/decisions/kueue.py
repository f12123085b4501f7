"""Kueue: Jobs admitted by a LocalQueue instead of started by the operator (issue #17).

Why a module of its own: under Kueue the Job's ``spec.suspend`` belongs to Kueue. The operator
creates each Job suspended, with the queue label and Kueue's partial-admission annotation, and
from then on never writes ``suspend`` nor changes ``parallelism``. Pure functions over
typed facts; ``jobs.py`` and ``batch.py`` call them.

The contract, as the rest of the operator applies it:

* **Waiting vs admitted.** A Kueue-managed Job that is suspended waits for admission: its pods
  are *waiting*, not workers, not failures. Once Kueue unsuspends it, its ``parallelism`` (which
  Kueue sets to the admitted count under partial admission) is the *admitted* count.
* **Sizes are fixed per Job.** Kueue forbids resizing an admitted Job (and recreating the
  Workload of a waiting one loses its place in the queue), so the autoscaler's parallelism
  applies to the next Job: each batch's Job asks for what the autoscaler wants when it is
  created, Kueue admits 1..that many (``kueue.x-k8s.io/job-min-parallelism: "1"``), and batches
  are small enough (``shardsPerBatch``) that new Jobs follow the autoscaler within one batch.
* **Pause is delete.** When the dataset is suspended, or the budget or autoscaler wants no pods
  for a batch, its Job is deleted (pods checkpoint on SIGTERM; committed shards are kept in the
  batch status) and created again, suspended, when pods are wanted again. Setting
  ``suspend: true`` ourselves would be undone by Kueue while its Workload stays admitted. A spent
  budget stops Kueue Jobs this way too (a plain Job is shrunk and its running shards finish; a
  Kueue Job cannot shrink, so its pods stop and keep what they checkpointed).
* **Eviction is a preemption.** An admitted Job that becomes suspended again was evicted by Kueue
  (preempted by a higher priority workload, reclaimed by its cohort, a stopped ClusterQueue, a
  PodsReady timeout). It counts as preemptions (the pods it had), never as a retry; the attempt
  stays the same and the Job resumes from the committed shards and checkpoints when readmitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parallel_synth.decisions.facts import LABEL_QUEUE, JobFacts, PodFacts

ANNOTATION_MIN_PARALLELISM = "kueue.x-k8s.io/job-min-parallelism"
"""Kueue's partial admission: admit as few as this many pods when the quota is short."""


def enqueue(queue: str | None, job: dict[str, Any], *, partial: bool = True) -> dict[str, Any]:
    """The Job, submitted to ``queue``: queue label, ``suspend: true``, partial admission.

    Without a queue the Job is returned unchanged.
    """
    if not queue:
        return job
    meta = job.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), LABEL_QUEUE: queue}
    if partial and int(job["spec"].get("parallelism") or 0) > 1:
        meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION_MIN_PARALLELISM: "1"}
    job["spec"]["suspend"] = True
    return job


def is_managed(job: JobFacts | None) -> bool:
    """Whether Kueue manages this Job (it carries the queue label)."""
    return job is not None and job.queue is not None


@dataclass(frozen=True)
class Admission:
    """A Kueue-managed Job's admission: pods admitted (running or starting) and pods waiting."""

    admitted: int = 0
    waiting: int = 0
    reason: str = ""
    message: str = ""

    @property
    def is_waiting(self) -> bool:
        return self.waiting > 0


def admission(job: JobFacts | None) -> Admission:
    """Read a Job's admission from ``spec.suspend`` and ``spec.parallelism``.

    A finished Job holds nothing. The reason and message of a suspended Job come from its
    ``Suspended`` condition (written by the Job controller when Kueue suspends it).
    """
    if job is None or not is_managed(job) or job.finished is not None:
        return Admission()
    pods = max(0, min(job.parallelism, job.completions))
    if job.suspended:
        return Admission(waiting=pods, reason=job.suspended_reason or "Queued",
                         message=job.suspended_message or "waiting for Kueue admission")
    return Admission(admitted=pods, reason="Admitted", message="admitted by Kueue")


@dataclass(frozen=True)
class Eviction:
    """Kueue took back an admitted Job: how many pods that preempted and which pod names."""

    pods: int
    names: tuple[str, ...]
    reason: str
    message: str


def eviction(*, was_admitted: int, job: JobFacts | None, pods: Sequence[PodFacts]) -> Eviction | None:
    """An eviction when a Job the last reconcile saw admitted is suspended again.

    ``was_admitted`` is the batch status' ``admitted`` from the last reconcile. The preempted
    count is the Job's pods that had not succeeded (listed now), at least the pods last seen
    admitted when they are already gone; their names go to the preemption ledger so the pods'
    own SIGTERM exit is not counted a second time.
    """
    if was_admitted <= 0 or job is None or not is_managed(job):
        return None
    adm = admission(job)
    if not adm.is_waiting:
        return None
    names = tuple(sorted(p.name for p in pods if (p.job or job.name) == job.name and p.phase != "Succeeded"))
    return Eviction(pods=max(len(names), 1) if names else max(was_admitted, 1), names=names,
                    reason=adm.reason, message=adm.message)
