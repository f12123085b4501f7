"""Status aggregation, the status patch (one writer, written only when it changed), Events and apply."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from builders import batch_spec, job_status, pod, render_job, spec

from parallel_synth.cluster.events import MAX_MESSAGE, event_body
from parallel_synth.cluster.kube import EVENTS, JOBS
from parallel_synth.cluster.observe import job_facts, pod_facts
from parallel_synth.cluster.reconcile import Target, apply
from parallel_synth.decisions.batch import decide_batch
from parallel_synth.decisions.dataset import decide_dataset
from parallel_synth.decisions.effects import (
    CreateJob,
    DeleteJob,
    Event,
    PatchStatus,
    PostEvent,
    ScaleJob,
    status_patch,
)
from parallel_synth.decisions.facts import ObservedBatch
from parallel_synth.decisions.jobs import JobRequest
from parallel_synth.settings import Settings
from synth_contract.api import RenderBatchStatus, SynthDatasetStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
SETTINGS = Settings()
BSPEC = batch_spec(shard_start=20, parallelism=2)


def tick(status: RenderBatchStatus, job: dict[str, Any] | None, pods: list[dict[str, Any]], *,
         now: datetime = NOW) -> Any:
    return decide_batch(dataset="ds", namespace="ns", name="ds-b2", spec=BSPEC, status=status, dataset_spec=spec(),
                        job=job_facts(job) if job is not None else None, pods=[pod_facts(p) for p in pods],
                        generation=1, now=now, settings=SETTINGS)


def started() -> tuple[RenderBatchStatus, dict[str, Any]]:
    first = tick(RenderBatchStatus(), None, [])
    assert first.create_job is not None
    return first.status, render_job(spec(), request=first.create_job, owner_uid="u1", settings=SETTINGS.pods)


# --------------------------------------------------------------------------- the status patch


def test_a_status_never_written_gets_every_field_then_only_what_changed() -> None:
    new = RenderBatchStatus(attempt=1, phase="Pending")
    first = status_patch(RenderBatchStatus(), new)
    assert first is not None and first["phase"] == "Pending" and first["attempt"] == 1  # defaults included
    stored = RenderBatchStatus.model_validate(new.wire())
    assert status_patch(stored, new) is None
    moved = status_patch(stored, new.model_copy(update={"phase": "Running", "message": "go"}))
    assert moved == {"phase": "Running", "message": "go"}
    gone = status_patch(RenderBatchStatus.model_validate({"phase": "Running", "retryAfter": "2026-01-01T00:00:00Z"}),
                        RenderBatchStatus(phase="Running"))
    assert gone is not None and gone["retryAfter"] is None  # removed by the merge patch


def test_per_tick_counters_alone_are_not_written() -> None:
    stored = RenderBatchStatus.model_validate({"phase": "Running", "gpuSeconds": 10.0})
    assert status_patch(stored, stored.model_copy(update={"gpu_seconds": 99.0})) is None
    both = status_patch(stored, stored.model_copy(update={"gpu_seconds": 99.0, "active": 2}))
    assert both == {"gpuSeconds": 99.0, "active": 2}  # written along with a real change


def test_a_batch_decision_that_changes_nothing_yields_no_patch() -> None:
    status, job = started()
    running = job_status(job, completed="0", active=2)
    pods = [pod("p1", batch="ds-b2", job="ds-b2-a1", phase="Running", started=NOW - timedelta(hours=1))]
    once = tick(status, running, pods)
    assert any(isinstance(e, PatchStatus) for e in once.effects)
    twice = tick(once.status, running, pods, now=NOW + timedelta(seconds=10))
    assert not any(isinstance(e, PatchStatus) for e in twice.effects)
    assert twice.status.gpu_seconds > once.status.gpu_seconds  # the live GPU time still moved, unwritten


def test_a_dataset_decision_that_changes_nothing_yields_no_patch() -> None:
    s = spec()
    first = decide_dataset(name="ds", spec=s, status=SynthDatasetStatus(), batches=[], index_job=None, generation=1,
                           now=NOW, settings=SETTINGS)
    live = [ObservedBatch(c.name, c.spec, RenderBatchStatus(phase="Running", attempt=1), index=c.index)
            for c in first.create]
    second = decide_dataset(name="ds", spec=s, status=first.status, batches=live, index_job=None, generation=1,
                            now=NOW + timedelta(seconds=15), settings=SETTINGS)
    third = decide_dataset(name="ds", spec=s, status=second.status, batches=live, index_job=None, generation=1,
                           now=NOW + timedelta(seconds=30), settings=SETTINGS)
    assert second.create == [] and third.effects == ()


# --------------------------------------------------------------------------- aggregation


def test_dataset_status_adds_folded_and_live_batches() -> None:
    s = spec()  # 100 shards of 100 samples, 7 shards per batch
    first = decide_dataset(name="ds", spec=s, status=SynthDatasetStatus(), batches=[], index_job=None, generation=1,
                           now=NOW, settings=SETTINGS)
    b0, b1 = first.create[0], first.create[1]
    done = ObservedBatch(b0.name, b0.spec, RenderBatchStatus.model_validate(
        {"phase": "Succeeded", "completedShards": "0-6", "shardsDone": 7, "preemptions": 2, "retries": 1,
         "gpuSeconds": 50.0, "spotGpuSeconds": 20.0}), index=b0.index)
    live = ObservedBatch(b1.name, b1.spec, RenderBatchStatus.model_validate(
        {"phase": "Running", "attempt": 1, "completedShards": "0-2", "shardsDone": 3, "preemptions": 1,
         "gpuSeconds": 30.0, "spotGpuSeconds": 30.0, "active": 2}), index=b1.index)
    d = decide_dataset(name="ds", spec=s, status=first.status, batches=[done, live], index_job=None, generation=1,
                       now=NOW + timedelta(seconds=15), settings=SETTINGS)
    st = d.status
    assert (st.samples.completed, st.shards.completed, st.shards.total) == (1000, 10, 100)
    assert (st.preemptions, st.retries) == (3, 1)
    assert (st.gpu_seconds, st.spot_gpu_seconds) == (80.0, 50.0)
    assert st.folded.batches == "0" and st.folded.samples == 700 and st.folded.gpu_seconds == 50.0
    assert sum(c.completed for c in st.categories.values()) == 1000
    assert st.progress == "10.0%" and st.workers.active == 2
    assert st.cost.gpu_hours == round(80.0 / 3600, 3)
    assert d.delete == [b0.name]


def test_batch_status_counts_pods_once() -> None:
    status, job = started()
    running = job_status(job, completed="0-1", active=1)
    pods = [pod("p1", batch="ds-b2", job="ds-b2-a1", phase="Succeeded", started=NOW - timedelta(hours=1),
                finished=NOW - timedelta(minutes=30)),
            pod("p2", batch="ds-b2", job="ds-b2-a1", phase="Running", started=NOW - timedelta(minutes=10)),
            pod("p3", batch="ds-b2", job="ds-b2-a1", phase="Pending", started=None)]
    d = tick(status, running, pods)
    st = d.status
    assert (st.shards_done, st.samples_completed, st.progress, st.completed_shards) == (2, 200, "2/10", "0-1")
    assert (st.active, st.pending) == (1, 1)
    assert st.gpu_seconds_finished == 1800.0 and st.gpu_seconds == 1800.0 + 600.0
    again = tick(st, running, pods)
    assert again.status.gpu_seconds_finished == 1800.0  # the finished pod is counted once


# --------------------------------------------------------------------------- Events and apply


def test_event_body_is_a_core_v1_event_about_the_object() -> None:
    involved = {"apiVersion": "parallelsynth.io/v1alpha1", "kind": "RenderBatch",
                "metadata": {"name": "ds-b2", "namespace": "ns", "uid": "u1"}}
    body = event_body(involved, Event("Warning", "BatchFailed", "x" * 5000), now=NOW)
    assert body["involvedObject"] == {"apiVersion": "parallelsynth.io/v1alpha1", "kind": "RenderBatch",
                                      "name": "ds-b2", "namespace": "ns", "uid": "u1"}
    assert (body["type"], body["reason"], len(body["message"])) == ("Warning", "BatchFailed", MAX_MESSAGE)
    assert body["metadata"]["generateName"] == "ds-b2." and body["metadata"]["namespace"] == "ns"
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-01-01T01:00:00Z"


class FakeKube:
    """Records the calls ``apply`` makes; creates answer ``created`` (False: 409, it existed)."""

    def __init__(self, *, created: bool = True) -> None:
        self.created = created
        self.calls: list[tuple[str, str, str]] = []

    async def create(self, resource: Any, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append(("create", resource.plural, body.get("reason") or body["metadata"].get("name", "")))
        return self.created if resource is not EVENTS else True

    async def patch(self, resource: Any, namespace: str, name: str, patch: dict[str, Any], *,
                    status: bool = False, resource_version: str | None = None) -> None:
        self.calls.append(("patch/status" if status else "patch", resource.plural, name))

    async def delete(self, resource: Any, namespace: str, name: str) -> bool:
        self.calls.append(("delete", resource.plural, name))
        return True

    async def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any]:
        """What a 409 found: ours (owned by the reconciled batch, uid u1)."""
        return {"metadata": {"name": name, "ownerReferences": [{"uid": "u1"}]}}


def _apply(kube: FakeKube, effects: list[Any]) -> None:
    body = {"apiVersion": "parallelsynth.io/v1alpha1", "kind": "RenderBatch",
            "metadata": {"name": "ds-b2", "namespace": "ns", "uid": "u1"}}
    asyncio.run(apply(kube, Target(JOBS, body, dataset_spec=spec()), effects,  # type: ignore[arg-type]
                      settings=SETTINGS, now=NOW))


def test_apply_performs_the_effects_in_order_and_announces_only_what_it_created() -> None:
    req = JobRequest(dataset="ds", namespace="ns", batch="ds-b2", batch_spec=BSPEC, attempt=1, shard_offset=0,
                     completions=10, parallelism=2)
    effects = [PatchStatus({"phase": "Running"}), CreateJob(req, announce=Event("Normal", "BatchStarted", "go")),
               ScaleJob("ds-b2-a1", 3, 10), DeleteJob("ds-b2-a0"), PostEvent(Event("Warning", "Preempted", "p"))]
    kube = FakeKube()
    _apply(kube, effects)
    assert kube.calls == [("patch/status", "jobs", "ds-b2"), ("create", "configmaps", "ds-b2-a1-spec"),
                          ("create", "jobs", "ds-b2-a1"),
                          ("create", "events", "BatchStarted"), ("patch", "jobs", "ds-b2-a1"),
                          ("delete", "jobs", "ds-b2-a0"), ("create", "events", "Preempted")]
    existed = FakeKube(created=False)  # the Job was there already (409): no second BatchStarted
    _apply(existed, effects[1:2])
    assert existed.calls == [("create", "configmaps", "ds-b2-a1-spec"), ("create", "jobs", "ds-b2-a1")]
