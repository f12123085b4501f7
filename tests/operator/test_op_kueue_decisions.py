"""Pure batch decisions for Kueue-managed Jobs (issue #17): sizes fixed per Job, pause by delete,
evictions counted once as preemptions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from builders import batch_body, batch_spec, pod, render_job, spec

from parallel_synth.cluster.observe import job_facts, observed_batch, pod_facts
from parallel_synth.decisions.batch import decide_batch
from parallel_synth.settings import Settings
from synth_contract.api import RenderBatchStatus, SynthDatasetStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
SETTINGS = Settings()
QSPEC = spec(queue="team-a")


def kueue_job(*, parallelism: int = 4, suspend: bool, completed: str = "") -> dict[str, Any]:
    job = render_job(QSPEC, parallelism=parallelism, settings=SETTINGS.pods)
    job["spec"]["suspend"] = suspend
    job["status"] = {"active": 0 if suspend else parallelism, "completedIndexes": completed}
    if suspend:
        job["status"]["conditions"] = [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]
    return job


def decide(*, parallelism: int, status: RenderBatchStatus | dict[str, Any] | None, job: dict[str, Any] | None,
           pods: list[dict[str, Any]] | None = None, dataset_spec: Any = QSPEC) -> Any:
    return decide_batch(dataset="ds", namespace="ns", name="ds-b0", spec=batch_spec(parallelism=parallelism),
                        status=RenderBatchStatus.model_validate(status or {}) if not isinstance(status, RenderBatchStatus)
                        else status, dataset_spec=dataset_spec,
                        job=job_facts(job) if job is not None else None, pods=[pod_facts(p) for p in pods or []],
                        generation=1, now=NOW, settings=SETTINGS)


def test_no_job_is_queued_while_no_pods_are_wanted() -> None:
    d = decide(parallelism=0, status=None, job=None)
    assert d.create_job is None and d.status.wire()["attempt"] == 1
    d = decide(parallelism=0, status=d.status, job=None)
    assert d.create_job is None and d.status.wire()["phase"] == "Suspended"
    d = decide(parallelism=3, status=d.status, job=None)
    assert d.create_job is not None and d.create_job.parallelism == 3


@pytest.mark.parametrize("suspend", [True, False])
def test_a_kueue_job_is_never_resized(suspend: bool) -> None:
    d = decide(parallelism=7, status={"attempt": 1, "admitted": 0 if suspend else 4}, job=kueue_job(suspend=suspend))
    assert d.patch_parallelism is None and d.delete_jobs == []
    assert d.status.wire()["phase"] == ("Pending" if suspend else "Running")
    assert (d.status.wire()["waiting"], d.status.wire()["admitted"]) == ((4, 0) if suspend else (0, 4))


def test_the_same_resize_patches_a_job_without_a_queue() -> None:
    job = kueue_job(suspend=False)
    del job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"], job["spec"]["suspend"]
    d = decide(parallelism=7, status={"attempt": 1}, job=job, dataset_spec=spec())
    assert d.patch_parallelism == 7


def test_pause_deletes_the_job_and_keeps_the_committed_shards() -> None:
    d = decide(parallelism=0, status={"attempt": 1, "admitted": 4}, job=kueue_job(suspend=False, completed="0-3"))
    assert d.delete_jobs == ["ds-b0-a1"] and d.patch_parallelism is None
    assert d.status.wire()["completedShards"] == "0-3" and d.status.wire()["admitted"] == 0 and d.status.wire()["retries"] == 0
    again = decide(parallelism=0, status=d.status, job=None)
    assert again.create_job is None and again.status.wire().get("evictions", 0) == 0  # a pause is not an eviction


@pytest.mark.parametrize(("listed", "preempted"), [
    (["ds-b0-a1-0-x", "ds-b0-a1-1-y"], 2),  # the pods being stopped are listed: one preemption each
    ([], 4),  # already gone: the pods last seen admitted
])
def test_eviction_counts_preemptions_once_and_no_retry(listed: list[str], preempted: int) -> None:
    pods = [pod(n, batch="ds-b0", job="ds-b0-a1", phase="Failed", finished="2026-01-01T00:59:00Z", exit_code=143)
            for n in listed]
    d = decide(parallelism=4, status={"attempt": 1, "admitted": 4}, job=kueue_job(suspend=True), pods=pods)
    assert (d.status.wire()["preemptions"], d.status.wire()["retries"], d.status.wire()["evictions"]) == (preempted, 0, 1)
    assert d.status.wire()["phase"] == "Pending" and [e.reason for e in d.events] == ["Evicted"]
    later = decide(parallelism=4, status=d.status, job=kueue_job(suspend=True), pods=pods)
    assert (later.status.wire()["preemptions"], later.status.wire()["evictions"]) == (preempted, 1)  # counted once


def test_metrics_show_admitted_and_waiting_pods_only_with_a_queue() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from parallel_synth.cluster.metrics import Metrics

    registry = CollectorRegistry()
    m = Metrics(registry)
    m.update_from_status("ns", "queued", {"samples": 10, "queue": "q"}, {"workers": {"admitted": 3, "waiting": 5}},
                         now=NOW)
    m.update_from_status("ns", "plain", {"samples": 10}, {"workers": {"active": 2}}, now=NOW)
    lines = [ln for ln in generate_latest(registry).decode().splitlines() if not ln.startswith("#")]
    assert 'parallelsynth_workers_admitted{dataset="queued",namespace="ns"} 3.0' in lines
    assert 'parallelsynth_workers_waiting{dataset="queued",namespace="ns"} 5.0' in lines
    assert not any("plain" in ln and ("_admitted" in ln or "_waiting" in ln) for ln in lines)


@pytest.mark.parametrize(("queue", "kept"), [(None, 2), ("team-a", 0)])
def test_a_spent_budget_drains_plain_jobs_but_stops_kueue_jobs(queue: str | None, kept: int) -> None:
    from parallel_synth.decisions.dataset import decide_dataset

    s = spec(budget={"maxDollars": 1.0}, **({"queue": queue} if queue else {}))
    body = batch_body("ds-b0", batch_spec(parallelism=4), index=0,
                      status={"phase": "Running", "attempt": 1, "active": 2, "established": 2, "gpuSeconds": 1e6})
    d = decide_dataset(name="ds", spec=s, status=SynthDatasetStatus.model_validate({"plan": {"shardsPerBatch": 10}}),
                       batches=[observed_batch(body)], index_job=None, generation=1, now=NOW, settings=SETTINGS)
    assert {c["type"]: c["status"] for c in d.status.wire()["conditions"]}["BudgetExceeded"] == "True"
    assert d.set_parallelism == {"ds-b0": kept}  # Kueue: the Job is deleted (pods checkpoint), never resized
