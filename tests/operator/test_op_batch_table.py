"""The batch decision as a table: Job state x pods -> outcome and effects (issue #22 items 1, 3, 7).

Each case names what the cluster shows (the current attempt's Job, the batch's pods) and what a
user would see afterwards: preemptions counted, the Events posted, the patch sent to the Job.
Cases are named after what happened, as Kueue names its reconciler cases.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from builders import batch_spec, job_status, pod, render_job, spec

from parallel_synth.cluster.observe import job_facts, pod_facts
from parallel_synth.decisions.batch import BatchDecision, decide_batch
from parallel_synth.decisions.effects import CreateJob, ScaleJob
from parallel_synth.decisions.jobs import JobRequest
from parallel_synth.settings import OperatorSettings, Settings
from synth_contract.api import RenderBatchSpec, RenderBatchStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
SETTINGS = Settings(operator=OperatorSettings(retry_backoff_seconds=10))
BATCH_UID = "b0000000-0000-4000-8000-000000000001"
OTHER_UID = "b0000000-0000-4000-8000-00000000dead"
BSPEC = batch_spec(shard_start=20, shard_count=10, parallelism=4)
STARTED = RenderBatchStatus(attempt=1, job="ds-b2-a1", phase="Running")


def the_job(*, parallelism: int = 4, owner: str = BATCH_UID, suspended: bool | None = None,
            **st: Any) -> dict[str, Any]:
    req = JobRequest(dataset="ds", namespace="ns", batch="ds-b2", batch_spec=BSPEC, attempt=1, shard_offset=0,
                     completions=10, parallelism=parallelism)
    job = job_status(render_job(spec(), request=req, owner_uid=owner, settings=SETTINGS.pods), **st)
    if suspended is not None:  # as the operator built it (created paused: suspended), or as told
        job["spec"]["suspend"] = suspended
    return job


def rpod(name: str, *, uid: str | None = BATCH_UID, reason: str | None = None,
         condition: str | None = None, **kw: Any) -> dict[str, Any]:
    """A render pod of Job ds-b2-a1; ``condition``: the DisruptionTarget reason; ``reason``: status.reason."""
    p = pod(name, batch="ds-b2", job="ds-b2-a1", **kw)
    p["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": "0"}
    if uid is not None:
        p["metadata"]["labels"]["parallelsynth.io/batch-uid"] = uid
    if condition is not None:
        p["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": condition,
                                      "lastTransitionTime": "2026-01-01T00:09:30Z"}]
    if reason is not None:
        p["status"]["reason"] = reason
    return p


SIGTERM = {"phase": "Failed", "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:10:00Z", "exit_code": 143}


@dataclass(frozen=True)
class Case:
    job: dict[str, Any] | None
    pods: list[dict[str, Any]] = field(default_factory=list)
    bspec: RenderBatchSpec = field(default_factory=lambda: BSPEC)
    status: RenderBatchStatus = field(default_factory=lambda: STARTED)
    queue: str | None = None
    # what the user sees
    preemptions: int = 0
    events: tuple[str, ...] = ()
    scale: tuple[int, bool | None] | None = None
    """(parallelism, suspend) of the Job patch; None: no patch."""
    creates: bool = False
    active: int | None = None


CASES: dict[str, Case] = {
    # item 3: only the cluster taking pods away is a preemption
    "scale-down-sigterm-is-not-a-preemption": Case(the_job(parallelism=2, active=2), [rpod("p1", **SIGTERM)],
                                                   bspec=BSPEC.model_copy(update={"parallelism": 2})),
    "pause-sigterm-of-4-spot-pods-is-not-a-preemption": Case(
        the_job(parallelism=0, suspended=True), [rpod(f"p{i}", **SIGTERM) for i in range(4)],
        bspec=BSPEC.model_copy(update={"parallelism": 0})),
    "scheduler-preemption": Case(the_job(active=3), [rpod("p1", condition="PreemptionByScheduler", **SIGTERM)],
                                 preemptions=1, events=("Preempted",)),
    "spot-drain-through-eviction-api": Case(the_job(active=3), [rpod("p1", condition="EvictionByEvictionAPI", **SIGTERM)],
                                            preemptions=1, events=("Preempted",)),
    "node-lost-taint-eviction": Case(the_job(active=3), [rpod("p1", condition="DeletionByTaintManager",
                                                             phase="Failed", started="2026-01-01T00:00:00Z")],
                                     preemptions=1, events=("Preempted",)),
    "node-lost-reason-only": Case(the_job(active=3), [rpod("p1", reason="NodeLost", phase="Failed",
                                                          started="2026-01-01T00:00:00Z")],
                                  preemptions=1, events=("Preempted",)),
    "crash-exit-1-is-a-failure-not-a-preemption": Case(the_job(active=3), [rpod("p1", **{**SIGTERM, "exit_code": 1})]),
    # item 7: pause is suspend (activeDeadlineSeconds stops), resume unsuspends
    "pause-suspends-the-job": Case(the_job(active=4), bspec=BSPEC.model_copy(update={"parallelism": 0}),
                                   scale=(0, True)),
    "paused-job-already-suspended-is-left-alone": Case(the_job(parallelism=0, suspended=True),
                                                       bspec=BSPEC.model_copy(update={"parallelism": 0})),
    "legacy-pause-by-parallelism-0-gets-suspended": Case(the_job(parallelism=0, suspended=False),
                                                         bspec=BSPEC.model_copy(update={"parallelism": 0}),
                                                         scale=(0, True)),
    "resume-unsuspends-with-the-parallelism": Case(the_job(parallelism=0, suspended=True), scale=(4, False)),
    "rescale-of-a-running-job": Case(the_job(active=4), bspec=BSPEC.model_copy(update={"parallelism": 6}),
                                     scale=(6, False)),
    # item 1: adopt by owner uid only
    "job-of-a-predecessor-with-this-name-is-not-adopted": Case(
        the_job(owner=OTHER_UID, completed="0-9", finished="Complete"), [rpod("p1", uid=OTHER_UID, **SIGTERM)]),
    "pods-of-a-predecessor-are-not-counted": Case(
        the_job(active=1), [rpod("old", uid=OTHER_UID, condition="PreemptionByScheduler", **SIGTERM),
                            rpod("mine", phase="Running", started="2026-01-01T00:30:00Z")], active=1),
    "pods-without-the-uid-label-still-count": Case(
        the_job(active=1), [rpod("legacy", uid=None, condition="PreemptionByScheduler", **SIGTERM)],
        preemptions=1, events=("Preempted",)),
    "no-job-yet-creates-it": Case(None, status=RenderBatchStatus(), creates=True, events=("BatchStarted",)),
}


def decide(case: Case) -> BatchDecision:
    return decide_batch(dataset="ds", namespace="ns", name="ds-b2", spec=case.bspec, status=case.status,
                        dataset_spec=spec(queue=case.queue) if case.queue else spec(),
                        job=job_facts(copy.deepcopy(case.job)) if case.job is not None else None,
                        pods=[pod_facts(p) for p in case.pods], generation=1, now=NOW, settings=SETTINGS,
                        uid=BATCH_UID)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_batch_decision_table(case: Case) -> None:
    d = decide(case)
    st = d.status.wire()
    assert st.get("preemptions", 0) == case.preemptions
    assert tuple(e.reason for e in d.events) == case.events
    scales = [(e.parallelism, e.suspend) for e in d.effects if isinstance(e, ScaleJob)]
    assert scales == ([case.scale] if case.scale else [])
    assert any(isinstance(e, CreateJob) for e in d.effects) == case.creates
    assert st.get("retries", 0) == 0
    if case.active is not None:
        assert st["active"] == case.active


def test_a_predecessors_finished_job_never_finishes_the_new_batch() -> None:
    d = decide(CASES["job-of-a-predecessor-with-this-name-is-not-adopted"])
    assert d.status.wire()["phase"] == "Running" and "earlier RenderBatch" in d.status.wire()["message"]
    assert d.status.wire().get("completedShards", "") == ""


def test_created_paused_job_is_suspended_and_carries_the_batch_uid() -> None:
    job = the_job(parallelism=0)
    assert job["spec"]["suspend"] is True and job["spec"]["parallelism"] == 0
    assert job["spec"]["template"]["metadata"]["labels"]["parallelsynth.io/batch-uid"] == BATCH_UID
    assert "suspend" not in the_job()["spec"]
