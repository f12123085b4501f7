"""The operator on the simulated clock: its real decisions, applied to the simulated cluster.

A reconcile here is ``cluster/reconcile.py``'s, with :class:`~.cluster.Cluster` for the API:
observe (the RenderBatch objects kept here, the Job and Pods the cluster answers), decide with
the operator's pure functions (``decide_batch`` per RenderBatch: Job attempts, retries,
preemptions, GPU time, Kueue admission; ``decide_dataset``: window, folding, status, the
autoscaler, cost; ``finalize``: the index Job), then apply in the same order: children and the
status, deletes once the fold is written, Events (counted by reason).

Timing (the real operator runs batch timers every 10 s and the dataset timer every 15 s): the
caller reconciles every batch just before the dataset, and a batch right after the dataset
created it or changed its parallelism, as a timer would a few seconds later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from parallel_synth.decisions.batch import (
    LABEL_INDEX,
    BatchDecision,
    DatasetDecision,
    EventSpec,
    decide_batch,
    decide_dataset,
)
from parallel_synth.decisions.finalize import finalize, needs_index
from parallel_synth.decisions.jobs import (
    Owner,
    build_index_job,
    build_job,
    index_job_name,
    job_name,
    job_progress,
)
from parallel_synth.decisions.status import parse_time
from parallel_synth.settings import OperatorSettings
from parallel_synth.simulator.clock import BATCH, Clock
from parallel_synth.simulator.cluster import Cluster
from parallel_synth.simulator.objects import NODES
from synth_contract import ranges
from synth_contract.api import RenderBatchSpec, SynthDatasetSpec

NAMESPACE = "simulated"
KEPT = ("phase", "attempt", "completedShards", "failedShards", "shardsDone", "samplesCompleted", "preemptions",
        "retries", "gpuSeconds", "spotGpuSeconds", "gpuSecondsSettled", "evictions", "message")
"""Batch status fields the report keeps of each RenderBatch once the dataset has folded it."""


class Operator:
    """One dataset's operator: its RenderBatch objects and status, reconciled on demand."""

    def __init__(self, name: str, spec: SynthDatasetSpec, cluster: Cluster, clock: Clock,
                 settings: OperatorSettings) -> None:
        self.name = name
        self.spec = spec
        self.cluster = cluster
        self.clock = clock
        self.settings = settings
        self.status: dict[str, Any] = {}
        self.batches: dict[str, dict[str, Any]] = {}  # RenderBatch bodies as the API holds them
        self.batch_specs: dict[str, RenderBatchSpec] = {}
        self.folded: dict[str, dict[str, Any]] = {}  # the last status of each RenderBatch (KEPT fields)
        self.event_reasons: dict[str, int] = {}
        self.failed_shards = 0  # shards decide_batch failed for good
        self.seen: dict[str, int] = {}  # batch -> the cluster version its last reconcile saw

    # ------------------------------------------------------------------ RenderBatches

    def reconcile_batch(self, name: str) -> BatchDecision | None:
        """``reconcile_batch``: one RenderBatch's Job attempts, from its Job and Pods."""
        body = self.batches.get(name)
        if body is None:
            return None
        old = body["status"]
        if old.get("phase") in ("Succeeded", "Failed"):
            return None  # final: the dataset folds and deletes it
        self.seen[name] = self.cluster.batch(name).version
        spec = self.batch_specs[name]
        now = self.clock.now()
        attempt = int(old.get("attempt") or 0)
        job = None
        pods: list[dict[str, Any]] = []
        if attempt > 0:
            job = self.cluster.get_job(job_name(name, attempt))
            if job is not None:
                pods = self.cluster.list_pods(name)
        decision = decide_batch(
            dataset=self.name, namespace=NAMESPACE, name=name, spec=spec, status=old, dataset_spec=self.spec,
            job=job, pods=pods, generation=1, now=now, settings=self.settings, node_labels=NODES)
        if job is not None:
            self.cluster.listed(name)
        st = body["status"] = decision.status
        posted = list(decision.events)
        if decision.create_job is not None:
            owner = Owner(kind="RenderBatch", name=name, uid=None)
            if not self.cluster.create_job(build_job(decision.create_job, self.spec, owner, settings=self.settings)):
                posted = [e for e in posted if e.reason != "BatchStarted"]
        if decision.patch_parallelism is not None and job is not None:
            completions = int(job["spec"]["completions"])
            self.cluster.patch_parallelism(job["metadata"]["name"], max(0, min(decision.patch_parallelism,
                                                                                completions)))
        for jname in decision.delete_jobs:
            self.cluster.delete_job(jname)
        self._count(posted)
        if st.get("phase") == "Failed" and old.get("phase") != "Failed":
            self.failed_shards += ranges.count(ranges.parse(st.get("failedShards")))
        retry_after = parse_time(st.get("retryAfter"))
        if retry_after is not None and retry_after > now and st.get("retryAfter") != old.get("retryAfter"):
            self.clock.push(retry_after.timestamp() - self.clock.t0, BATCH, name)  # the timer after the backoff
        return decision

    def reconcile_batches(self, names: Iterable[str] | None = None, *, changed_only: bool = False) -> None:
        """Reconcile these RenderBatches (all by default); ``changed_only``: those whose Job or
        pods changed since their last reconcile (the others' status would differ only by the
        clock: live GPU-seconds and pod ages)."""
        for name in list(self.batches if names is None else names):
            if not changed_only or self.seen.get(name) != self.cluster.batch(name).version:
                self.reconcile_batch(name)

    def set_parallelism(self, name: str, parallelism: int) -> None:
        """``PATCH`` a RenderBatch's ``spec.parallelism`` (its timer applies it to the Job)."""
        spec = self.batch_specs[name].model_copy(update={"parallelism": parallelism})
        self.batch_specs[name] = spec
        self.batches[name]["spec"]["parallelism"] = parallelism

    def parallelism(self, name: str) -> int:
        """A RenderBatch's ``spec.parallelism`` (0 once it is gone)."""
        spec = self.batch_specs.get(name)
        return spec.parallelism if spec is not None else 0

    def live(self) -> list[tuple[str, RenderBatchSpec, dict[str, Any]]]:
        """Name, spec and status of each RenderBatch (what the autoscaler's hand-over reads)."""
        return [(n, self.batch_specs[n], b["status"]) for n, b in self.batches.items()]

    # ------------------------------------------------------------------ the dataset

    def reconcile_dataset(self) -> DatasetDecision | None:
        """``reconcile_dataset``: window, folding, status and autoscaler; the index Job at the end."""
        old = self.status
        if old.get("phase") == "Succeeded":
            return None  # finished and unchanged since: no API calls while it stays so
        now = self.clock.now()
        decision = decide_dataset(name=self.name, spec=self.spec, status=old, batches=list(self.batches.values()),
                                  generation=1, now=now, settings=self.settings)
        if needs_index(decision.status):  # every shard committed: the index Job finishes the dataset
            iname = index_job_name(self.name)
            ijob = self.cluster.get_job(iname)
            fin = finalize(decision.status, decision.events, job=iname,
                           job_state=job_progress(ijob).finished if ijob is not None else None,
                           job_exists=ijob is not None, now=now)
            if fin.create_job:
                owner = Owner(kind="SynthDataset", name=self.name, uid=None)
                self.cluster.create_job(build_index_job(self.name, NAMESPACE, self.spec, owner, settings=self.settings))
            decision = replace(decision, status=fin.status, events=fin.events)
        changed = []
        for nb in decision.create:
            self.batch_specs[nb.name] = nb.spec
            self.batches[nb.name] = {"metadata": {"name": nb.name, "labels": {LABEL_INDEX: str(nb.index)}},
                                     "spec": nb.spec.wire(), "status": {}}
            changed.append(nb.name)
        for bname, par in decision.set_parallelism.items():
            if bname in self.batches:
                self.set_parallelism(bname, par)
                changed.append(bname)
        self.status = decision.status
        for gone in decision.delete:  # only after the fold is recorded in the dataset's status
            body = self.batches.pop(gone, None)
            self.batch_specs.pop(gone, None)
            if body is not None:
                self.folded[gone] = {k: body["status"][k] for k in KEPT if k in body["status"]}
            self.cluster.delete_batch(gone)
            self.seen.pop(gone, None)
        self._count(decision.events)
        self.reconcile_batches(changed)
        return decision

    def _count(self, events: list[EventSpec]) -> None:
        for e in events:
            self.event_reasons[e.reason] = self.event_reasons.get(e.reason, 0) + 1

    def now(self) -> datetime:
        return self.clock.now()
