"""The operator on the simulated clock: its real decisions, applied to the simulated cluster.

A reconcile here is ``cluster/reconcile.py``'s, with :class:`~.cluster.Cluster` for the API:
observe (the RenderBatch objects kept here; the Job and Pods as the cluster answers them, as
typed facts), decide with the operator's pure functions (``decide_batch`` per RenderBatch: Job
attempts, retries, preemptions, GPU time, Kueue admission; ``decide_dataset``: window, folding,
status, the autoscaler, cost and the index Job), then apply the decision's effects in their
order, as ``reconcile.apply`` does. The typed status a decision returns is what the API would
hold for the next reconcile; Events are counted by reason.

Timing (the real operator runs batch timers every 10 s and the dataset timer every 15 s): the
caller reconciles every batch just before the dataset, and a batch right after the dataset
created it or changed its parallelism, as its timer would a few seconds later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from parallel_synth.decisions.batch import decide_batch
from parallel_synth.decisions.dataset import decide_dataset, needs_index_job
from parallel_synth.decisions.effects import (
    CreateBatch,
    CreateIndexJob,
    CreateJob,
    DeleteBatch,
    DeleteJob,
    Effect,
    Event,
    PostEvent,
    ScaleBatch,
    ScaleJob,
)
from parallel_synth.decisions.facts import ObservedBatch
from parallel_synth.decisions.jobs import (
    Owner,
    build_index_job,
    build_job,
    index_job_name,
    job_name,
    parallelism_patch,
)
from parallel_synth.decisions.status import is_finished
from parallel_synth.settings import Settings
from parallel_synth.simulator.clock import BATCH, Clock
from parallel_synth.simulator.cluster import Cluster
from parallel_synth.simulator.objects import NODES
from synth_contract import ranges
from synth_contract.api import (
    BatchPhase,
    DatasetPhase,
    RenderBatchStatus,
    SynthDatasetSpec,
    SynthDatasetStatus,
)
from synth_contract.times import epoch

NAMESPACE = "simulated"
KEPT = ("phase", "attempt", "completedShards", "failedShards", "shardsDone", "samplesCompleted", "preemptions",
        "retries", "gpuSeconds", "spotGpuSeconds", "gpuSecondsSettled", "evictions", "message")
"""Batch status fields the report keeps of each RenderBatch once the dataset has folded it."""


class Operator:
    """One dataset's operator: its RenderBatch objects and status, reconciled on demand."""

    def __init__(self, name: str, spec: SynthDatasetSpec, cluster: Cluster, clock: Clock,
                 settings: Settings) -> None:
        self.name = name
        self.spec = spec
        self.cluster = cluster
        self.clock = clock
        self.settings = settings
        self.status = SynthDatasetStatus()
        self.batches: dict[str, ObservedBatch] = {}  # the RenderBatch objects as the API holds them
        self.folded: dict[str, dict[str, object]] = {}  # the last status of each RenderBatch (KEPT fields)
        self.event_reasons: dict[str, int] = {}
        self.failed_shards = 0  # shards decide_batch failed for good
        self.seen: dict[str, int] = {}  # batch -> the cluster version its last reconcile saw

    # ------------------------------------------------------------------ RenderBatches

    def reconcile_batch(self, name: str) -> None:
        """``reconcile_batch``: one RenderBatch's Job attempts, from its Job and Pods."""
        batch = self.batches.get(name)
        if batch is None or is_finished(batch.status.phase):
            return  # final: the dataset folds and deletes it
        self.seen[name] = self.cluster.batch(name).version
        old = batch.status
        now = self.clock.now()
        job = self.cluster.job(job_name(name, old.attempt)) if old.attempt > 0 else None
        pods = self.cluster.pods(name) if job is not None else []
        decision = decide_batch(
            dataset=self.name, namespace=NAMESPACE, name=name, spec=batch.spec, status=old, dataset_spec=self.spec,
            job=job, pods=pods, generation=1, now=now, settings=self.settings, node_labels=NODES)
        if job is not None:
            self.cluster.listed(name)
        st = decision.status
        self.batches[name] = replace(batch, status=st)
        self._apply(decision.effects, owner=Owner(kind="RenderBatch", name=name, uid=None))
        if st.phase == BatchPhase.FAILED and old.phase != BatchPhase.FAILED:
            self.failed_shards += ranges.count(ranges.parse(st.failed_shards))
        retry_after = epoch(st.retry_after)
        if retry_after is not None and st.retry_after != old.retry_after:  # its timer after a retry's backoff
            self.clock.push(retry_after - self.clock.t0, BATCH, name)

    def reconcile_batches(self, names: Iterable[str] | None = None, *, changed_only: bool = False) -> None:
        """Reconcile these RenderBatches (all by default); ``changed_only``: those whose Job or
        pods changed since their last reconcile (the others' status would differ only by the
        clock: live GPU-seconds and pod ages)."""
        for name in list(self.batches if names is None else names):
            if not changed_only or self.seen.get(name) != self.cluster.batch(name).version:
                self.reconcile_batch(name)

    def set_parallelism(self, name: str, parallelism: int) -> None:
        """``PATCH`` a RenderBatch's ``spec.parallelism`` (its timer applies it to the Job)."""
        batch = self.batches[name]
        self.batches[name] = replace(batch, spec=batch.spec.model_copy(update={"parallelism": parallelism}))

    def parallelism(self, name: str) -> int:
        """A RenderBatch's ``spec.parallelism`` (0 once it is gone)."""
        batch = self.batches.get(name)
        return batch.spec.parallelism if batch is not None else 0

    # ------------------------------------------------------------------ the dataset

    def reconcile_dataset(self) -> None:
        """``reconcile_dataset``: window, folding, status, autoscaler and the index Job."""
        if self.status.phase == DatasetPhase.SUCCEEDED:
            return  # finished and unchanged since: no API calls while it stays so
        batches = list(self.batches.values())
        index_job = None
        if needs_index_job(self.spec, self.status, batches):
            index_job = self.cluster.job(index_job_name(self.name))
        decision = decide_dataset(name=self.name, spec=self.spec, status=self.status, batches=batches,
                                  index_job=index_job, generation=1, now=self.clock.now(), settings=self.settings)
        self.status = decision.status
        changed = self._apply(decision.effects, owner=Owner(kind="SynthDataset", name=self.name, uid=None))
        self.reconcile_batches(changed)

    # ------------------------------------------------------------------ effects

    def _apply(self, effects: Sequence[Effect], *, owner: Owner) -> list[str]:
        """Perform a decision's effects in order (``reconcile.apply`` on the simulated cluster);
        returns the RenderBatches created or scaled (their timers run next)."""
        changed: list[str] = []
        for e in effects:
            if isinstance(e, CreateBatch):
                self.batches[e.name] = ObservedBatch(name=e.name, spec=e.spec, status=RenderBatchStatus(),
                                                     index=e.index)
                changed.append(e.name)
            elif isinstance(e, ScaleBatch):
                if e.name in self.batches:
                    self.set_parallelism(e.name, e.parallelism)
                    changed.append(e.name)
            elif isinstance(e, DeleteBatch):
                self._delete_batch(e.name)
            elif isinstance(e, CreateJob):
                job = build_job(e.request, self.spec, owner, settings=self.settings.pods)
                if self.cluster.create_job(job) and e.announce is not None:
                    self._count(e.announce)
            elif isinstance(e, CreateIndexJob):
                job = build_index_job(self.name, NAMESPACE, self.spec, owner, settings=self.settings.pods)
                if self.cluster.create_job(job) and e.announce is not None:
                    self._count(e.announce)
            elif isinstance(e, ScaleJob):
                patch = parallelism_patch(e.parallelism, e.completions, suspend=e.suspend)  # what apply sends
                self.cluster.patch_parallelism(e.name, patch["spec"]["parallelism"], suspend=e.suspend)
            elif isinstance(e, DeleteJob):
                self.cluster.delete_job(e.name)
            elif isinstance(e, PostEvent):
                self._count(e.event)
            # PatchStatus: the decision's typed status is kept as the object's status
        return changed

    def _delete_batch(self, name: str) -> None:
        """``DELETE`` a folded RenderBatch: its Jobs and pods go with it; the report keeps its counters."""
        batch = self.batches.pop(name, None)
        if batch is not None:
            wire = batch.status.wire()
            self.folded[name] = {k: wire[k] for k in KEPT if k in wire}
        self.cluster.delete_batch(name)
        self.seen.pop(name, None)

    def _count(self, event: Event) -> None:
        self.event_reasons[event.reason] = self.event_reasons.get(event.reason, 0) + 1

