"""The real operator against KMock: the test plays the Job controller and the node lifecycle."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from builders import manifest, wire
from kmockx import ThreadedKMock
from opcluster import DS, JOBS, NS, PODS, RB, job, names, reasons, running_operator, status
from waiting import wait_for

pytestmark = pytest.mark.integration


SPEC = wire(samples=3000, shardSize=100, shardsPerBatch=10,  # 30 shards, 3 batches of 10
            workers={"max": 2},  # at most 2 live batches
            retry={"perShard": 2, "attempts": 2},
            output={"uri": "s3://bucket/data", "credentialsSecret": "creds"})


def set_job_status(km: ThreadedKMock, name: str, **fields: Any) -> None:
    """What the Job controller writes: completedIndexes, failedIndexes, counters, conditions."""
    km.patch(f"{JOBS}/{name}/status", {"status": fields})


def finish_job(km: ThreadedKMock, name: str) -> None:
    n = job(km, name)["spec"]["completions"]
    set_job_status(km, name, completedIndexes=f"0-{n - 1}", succeeded=n, active=0,
                   conditions=[{"type": "Complete", "status": "True", "reason": "CompletionsReached"}])


def test_dataset_opens_a_bounded_window_of_batches_with_valid_jobs(cluster: ThreadedKMock, operator: Any) -> None:
    km = cluster
    km.request("POST", DS, manifest(SPEC, namespace=NS))
    wait_for(lambda: names(km, JOBS) == ["ds-b0-a1", "ds-b1-a1"], what="two Jobs")
    assert names(km, RB) == ["ds-b0", "ds-b1"]  # workers.max=2 bounds live batches, not the 3 batches
    ds_uid = km.request("GET", f"{DS}/ds")["metadata"]["uid"]
    for b in km.items(RB):
        assert b["metadata"]["ownerReferences"][0]["uid"] == ds_uid
        assert b["spec"]["parallelism"] == 1
    for j in km.items(JOBS):
        kubernetes_validate.validate({k: v for k, v in j.items() if k != "status"}, "1.33.0", strict=True)
        owner = j["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "RenderBatch" and owner["controller"] is True
    assert job(km, "ds-b1-a1")["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "10"
    st = wait_for(lambda: status(km) if status(km).get("phase") == "Running" else None, what="Running")
    assert st["plan"] == {"shardsPerBatch": 10, "batches": 3, "liveBatches": 2}
    assert st["shards"]["total"] == 30
    wait_for(lambda: "Planned" in reasons(km) and reasons(km).count("BatchStarted") == 2, what="events")


def test_job_progress_flows_into_batch_and_dataset_status_and_the_window_slides(
    cluster: ThreadedKMock, operator: Any
) -> None:
    km = cluster
    km.request("POST", DS, manifest(SPEC, namespace=NS))
    wait_for(lambda: names(km, JOBS) == ["ds-b0-a1", "ds-b1-a1"], what="Jobs")
    set_job_status(km, "ds-b0-a1", completedIndexes="0-3,5", succeeded=5, active=1)
    rb = wait_for(lambda: (b := km.request("GET", f"{RB}/ds-b0")) and b.get("status", {}).get("shardsDone") == 5
                  and b, what="batch progress")
    assert rb["status"]["completedShards"] == "0-3,5" and rb["status"]["samplesCompleted"] == 500
    assert rb["status"]["progress"] == "5/10"
    wait_for(lambda: status(km).get("samples", {}).get("completed") == 500, what="dataset samples")
    cats = status(km)["categories"]
    assert sum(c["completed"] for c in cats.values()) == 500
    finish_job(km, "ds-b0-a1")
    # b0 is folded and deleted (with its Job by garbage collection); b2 opens in its place.
    wait_for(lambda: names(km, RB) == ["ds-b1", "ds-b2"], what="window slides")
    wait_for(lambda: "ds-b2-a1" in names(km, JOBS) and "ds-b0-a1" not in names(km, JOBS), what="Jobs follow")
    st = wait_for(lambda: status(km) if status(km).get("folded", {}).get("batches") == "0" else None, what="fold")
    assert st["samples"]["completed"] == 1000 and st["shards"]["completed"] == 10
    assert st["progress"] == "33.3%"
    finish_job(km, "ds-b1-a1")
    finish_job(km, "ds-b2-a1")
    # Every shard committed: the dataset is not done until its index Job has written the index.
    wait_for(lambda: "ds-index" in names(km, JOBS), what="index Job")
    index_job = job(km, "ds-index")
    assert index_job["spec"]["template"]["spec"]["containers"][0]["command"] == ["synthctl"]
    pod_spec = index_job["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in str(pod_spec["containers"][0]["resources"]) and "tolerations" not in pod_spec
    st = wait_for(lambda: status(km) if status(km).get("index") else None, what="indexing")
    assert st["phase"] == "Running" and {c["type"]: c["reason"] for c in st["conditions"]}["Indexed"] == "Indexing"
    assert "Finished" not in reasons(km)
    set_job_status(km, "ds-index", succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    st = wait_for(lambda: status(km) if status(km).get("phase") == "Succeeded" else None, what="Succeeded")
    assert st["samples"] == {"target": 3000, "completed": 3000, "failed": 0, "quarantined": 0}
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
    assert {c["type"]: c["status"] for c in st["conditions"]}["Indexed"] == "True"
    wait_for(lambda: reasons(km).count("Finished") == 1, what="one Finished event")
    # etcd stays small: batches and their Jobs are gone; only the finished index Job remains (TTL)
    wait_for(lambda: names(km, RB) == [] and names(km, JOBS) == ["ds-index"], what="no objects left")


def test_preempted_pod_counts_as_preemption_not_failure(cluster: ThreadedKMock, operator: Any) -> None:
    km = cluster
    km.request("POST", DS, manifest(SPEC, namespace=NS))
    wait_for(lambda: "ds-b0-a1" in names(km, JOBS), what="Job")
    labels = job(km, "ds-b0-a1")["spec"]["template"]["metadata"]["labels"]
    km.request("POST", PODS, {"metadata": {"name": "ds-b0-a1-0-x1", "labels": labels}, "status": {
        "phase": "Failed", "startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                        "lastTransitionTime": "2026-01-01T00:05:00Z"}],
        "containerStatuses": [{"name": "render", "state": {"terminated": {
            "exitCode": 143, "finishedAt": "2026-01-01T00:05:30Z"}}}]}})
    # The Job controller does not count ignored pods as failed (podFailurePolicy: Ignore).
    set_job_status(km, "ds-b0-a1", active=1, failed=0)
    rb = wait_for(lambda: (b := km.request("GET", f"{RB}/ds-b0")) and b["status"].get("preemptions") == 1 and b,
                  what="preemption counted")
    assert rb["status"]["retries"] == 0
    assert rb["status"]["gpuSeconds"] == 330.0  # 5.5 minutes on one GPU
    wait_for(lambda: status(km).get("preemptions") == 1, what="dataset preemptions")
    set_job_status(km, "ds-b0-a1", active=1, completedIndexes="0")  # more ticks, same pod
    wait_for(lambda: km.request("GET", f"{RB}/ds-b0")["status"].get("shardsDone") == 1, what="progress")
    assert km.request("GET", f"{RB}/ds-b0")["status"]["preemptions"] == 1
    assert "Preempted" in reasons(km)


def test_failed_attempt_is_retried_for_the_missing_shards_only(cluster: ThreadedKMock, operator: Any) -> None:
    km = cluster
    km.request("POST", DS, manifest(SPEC, namespace=NS))
    wait_for(lambda: "ds-b0-a1" in names(km, JOBS), what="Job")
    set_job_status(km, "ds-b0-a1", completedIndexes="0-6", failedIndexes="7-8", failed=4, active=0,
                   conditions=[{"type": "Failed", "status": "True", "reason": "FailedIndexes"}])
    j2 = wait_for(lambda: job(km, "ds-b0-a2"), what="attempt 2")
    assert j2["spec"]["completions"] == 3  # offsets 7..9 only
    assert j2["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "7"
    wait_for(lambda: "ds-b0-a1" not in names(km, JOBS), what="attempt 1 removed")
    rb = km.request("GET", f"{RB}/ds-b0")["status"]
    assert rb["attempt"] == 2 and rb["completedShards"] == "0-6" and rb["retries"] == 5
    # The second (last) attempt fails too: the batch is Failed, the dataset Degraded, the rest goes on.
    set_job_status(km, "ds-b0-a2", completedIndexes="0,2", failedIndexes="1", failed=2, active=0,
                   conditions=[{"type": "Failed", "status": "True", "reason": "FailedIndexes"}])
    st = wait_for(lambda: status(km) if status(km).get("failedShards") == "8" else None, what="Degraded")
    assert st["phase"] == "Degraded" and st["shards"]["failed"] == 1
    assert st["samples"]["completed"] == 900
    wait_for(lambda: "ds-b2-a1" in names(km, JOBS), what="the rest goes on")
    assert {"BatchRetried", "BatchFailed"} <= set(reasons(km))


def test_restart_neither_duplicates_nor_loses_anything(cluster: ThreadedKMock) -> None:
    km = cluster
    km.request("POST", DS, manifest(SPEC, namespace=NS))
    with running_operator():
        wait_for(lambda: names(km, JOBS) == ["ds-b0-a1", "ds-b1-a1"], what="Jobs")
        set_job_status(km, "ds-b0-a1", completedIndexes="0-4", active=1)
        wait_for(lambda: status(km).get("samples", {}).get("completed") == 500, what="progress")
    # While the operator is down, b0 finishes.
    finish_job(km, "ds-b0-a1")
    posts_before = sum(1 for r in km.requests() if r.method == "POST" and "/jobs" in str(r.url))
    with running_operator():
        wait_for(lambda: names(km, RB) == ["ds-b1", "ds-b2"], what="fold after restart")
        st = wait_for(lambda: status(km) if status(km).get("samples", {}).get("completed") == 1000 else None,
                      what="counted once")
        wait_for(lambda: "ds-b2-a1" in names(km, JOBS), what="new Job")
    assert st["folded"]["batches"] == "0"
    job_posts = [r for r in km.requests() if r.method == "POST" and "/jobs" in str(r.url)]
    created = {r.data["metadata"]["name"] for r in job_posts}
    assert created == {"ds-b0-a1", "ds-b1-a1", "ds-b2-a1"}
    assert len(job_posts) - posts_before <= 2  # b2, plus at most a 409 retry of b1: never a new name
    assert status(km)["samples"]["completed"] == 1000


def test_suspend_scales_to_zero_and_delete_cascades_to_children_only(cluster: ThreadedKMock, operator: Any) -> None:
    km = cluster
    km.request("POST", DS, manifest(SPEC, namespace=NS))
    wait_for(lambda: names(km, JOBS) == ["ds-b0-a1", "ds-b1-a1"], what="Jobs")
    km.patch(f"{DS}/ds", {"spec": {"suspend": True}})
    wait_for(lambda: all(j["spec"]["parallelism"] == 0 for j in km.items(JOBS)), what="Jobs at zero")
    wait_for(lambda: status(km).get("phase") == "Suspended", what="Suspended")
    km.patch(f"{DS}/ds", {"spec": {"suspend": False}})
    wait_for(lambda: all(j["spec"]["parallelism"] == 1 for j in km.items(JOBS)), what="resumed")
    km.request("DELETE", f"{DS}/ds")
    wait_for(lambda: not names(km, RB) and not names(km, JOBS), what="cascade")
    wait_for(lambda: km.request("GET", f"{DS}/ds") is None, what="dataset gone")
    deletes = {str(r.url.path).split("/")[-2] for r in km.requests() if r.method == "DELETE"}
    assert deletes <= {"synthdatasets"}  # the operator deleted nothing itself here; no data is touched


def test_invalid_spec_is_reported_once_without_retry_storm(cluster: ThreadedKMock, operator: Any) -> None:
    km = cluster
    km.request("POST", DS, manifest(wire(SPEC, throughput={"deadline": "2001-01-01T00:00:00Z"}), namespace=NS))
    st = wait_for(lambda: status(km) if status(km).get("phase") == "Failed" else None, what="SpecValid=False")
    cond = {c["type"]: c for c in st["conditions"]}["SpecValid"]
    assert cond["status"] == "False" and "spec.throughput.deadline" in cond["message"]
    wait_for(lambda: "SpecInvalid" in reasons(km), what="Warning event")
    # Let time pass in a way we can observe: a valid dataset gets planned and started meanwhile.
    km.request("POST", DS, manifest(SPEC, name="ok", namespace=NS))
    wait_for(lambda: "ok-b1-a1" in names(km, JOBS), what="the valid dataset runs")
    patches = [r for r in km.requests() if r.method == "PATCH" and r.url.path.endswith("/ds/status")]
    assert len(patches) == 1  # written once, not on every tick
    assert [n for n in names(km, RB) if n.startswith("ds-")] == []
    assert reasons(km).count("SpecInvalid") == 1
