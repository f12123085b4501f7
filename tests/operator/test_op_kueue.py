"""The real operator under Kueue, against KMock: the test plays Kueue and the Job controller (issue #17).

Kueue admits a Job by unsuspending it and evicts it by suspending it again (the Job controller
then writes ``Suspended=True``); the operator must show waiting vs admitted workers, count an
eviction as a preemption (not a retry), and never write ``suspend`` itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from builders import manifest, wire
from kmockx import ThreadedKMock
from opcluster import DS, JOBS, NS, PODS, batch, job, names, reasons, status
from waiting import wait_for

pytestmark = pytest.mark.integration

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

SPEC = wire(samples=2000, shardSize=100, shardsPerBatch=10,  # 20 shards, 2 batches of 10
            workers={"min": 2, "max": 2},
            queue="team-vision",
            podTemplate={"priorityClassName": "batch-low", "labels": {"team": "vision"}},
            output={"uri": "s3://bucket/data", "credentialsSecret": "creds"})


def kueue_admits(km: ThreadedKMock, name: str) -> None:
    """What Kueue and the Job controller do on admission: unsuspend, then the pods start."""
    km.patch(f"{JOBS}/{name}", {"spec": {"suspend": False}})
    km.patch(f"{JOBS}/{name}/status", {"status": {"active": 1, "conditions": [
        {"type": "Suspended", "status": "False", "reason": "JobResumed", "message": "Job resumed"}]}})


def kueue_evicts(km: ThreadedKMock, name: str) -> None:
    """Kueue preempts the Workload: it suspends the Job; the Job controller marks it Suspended."""
    km.patch(f"{JOBS}/{name}", {"spec": {"suspend": True}})
    km.patch(f"{JOBS}/{name}/status", {"status": {"active": 0, "failed": 0, "conditions": [
        {"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"}]}})


def render_pod(km: ThreadedKMock, job_name: str, pod_name: str, **status: Any) -> None:
    labels = {**job(km, job_name)["spec"]["template"]["metadata"]["labels"], "batch.kubernetes.io/job-name": job_name}
    body = {"metadata": {"name": pod_name, "labels": labels},
            "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", **status}}
    if km.request("GET", f"{PODS}/{pod_name}") is None:
        km.request("POST", PODS, body)
    else:
        km.patch(f"{PODS}/{pod_name}/status", {"status": body["status"]})


def test_kueue_job_waits_runs_and_is_preempted_without_burning_a_retry(
    cluster: ThreadedKMock, operator: Any
) -> None:
    km = cluster
    km.request("POST", DS, manifest(SPEC, namespace=NS))
    wait_for(lambda: names(km, JOBS) == ["ds-b0-a1", "ds-b1-a1"], what="two queued Jobs")
    for j in km.items(JOBS):
        assert j["spec"]["suspend"] is True and j["metadata"]["labels"][QUEUE_LABEL] == "team-vision"
        assert j["spec"]["template"]["spec"]["priorityClassName"] == "batch-low"

    # waiting: the Jobs Kueue holds are neither workers nor failures
    st = wait_for(lambda: status(km) if status(km).get("workers", {}).get("waiting") == 2 else None,
                  what="2 waiting")
    assert st["workers"]["admitted"] == 0 and st["workers"]["active"] == 0 and st["workers"]["admission"] == "0/2"
    assert {c["type"]: c["reason"] for c in st["conditions"]}["Admitted"] == "Waiting"
    assert st["retries"] == 0 and st["phase"] != "Failed"
    assert batch(km)["phase"] == "Pending"

    # admitted: Kueue unsuspends, the pod runs
    kueue_admits(km, "ds-b0-a1")
    render_pod(km, "ds-b0-a1", "ds-b0-a1-0-p1")
    # the tick that sees the admission may list the pod only on the next one: wait for both
    b = wait_for(lambda: batch(km) if batch(km).get("phase") == "Running" and batch(km).get("admitted") == 1
                 and batch(km).get("active") == 1 else None, what="b0 admitted and its pod running")
    assert b["waiting"] == 0
    st = wait_for(lambda: status(km) if status(km).get("workers", {}).get("admission") == "1/2" else None,
                  what="1 of 2 admitted")
    assert {c["type"]: c["reason"] for c in st["conditions"]}["Admitted"] == "PartiallyAdmitted"
    km.patch(f"{JOBS}/ds-b0-a1/status", {"status": {"completedIndexes": "0-2", "succeeded": 3}})
    wait_for(lambda: batch(km).get("shardsDone") == 3, what="progress")

    # preempted: Kueue suspends it again; the pod gets SIGTERM, checkpoints and exits 143
    kueue_evicts(km, "ds-b0-a1")
    render_pod(km, "ds-b0-a1", "ds-b0-a1-0-p1", phase="Failed", containerStatuses=[
        {"name": "render", "state": {"terminated": {"exitCode": 143, "finishedAt": "2026-01-01T00:10:00Z"}}}])
    b = wait_for(lambda: batch(km) if batch(km).get("evictions") == 1 else None, what="eviction counted")
    assert (b["preemptions"], b["retries"], b["attempt"]) == (1, 0, 1)  # a preemption, no retry burned
    assert b["phase"] == "Pending" and b["waiting"] == 1 and b["admitted"] == 0
    assert b["completedShards"] == "0-2"  # committed work is kept
    st = wait_for(lambda: status(km) if status(km).get("preemptions") == 1 else None, what="dataset preemption")
    assert st["retries"] == 0 and st["workers"]["admission"] == "0/2"
    wait_for(lambda: "Evicted" in reasons(km), what="Evicted event")

    # readmitted: the same Job resumes (from the committed shards and checkpoints); nothing recounted
    kueue_admits(km, "ds-b0-a1")
    wait_for(lambda: batch(km).get("phase") == "Running", what="running again")
    wait_for(lambda: status(km).get("workers", {}).get("admitted") == 1, what="dataset sees it admitted")
    b = batch(km)
    assert (b["preemptions"], b["retries"], b["evictions"], b["attempt"]) == (1, 0, 1, 1)
    assert names(km, JOBS) == ["ds-b0-a1", "ds-b1-a1"]  # no new attempt

    # the operator never patched a Kueue Job (no `suspend`, no resize); only the test, as Kueue, did
    patches = [r for r in km.requests() if r.method == "PATCH" and "/jobs/" in str(r.url)]
    by_test = [r for r in patches if "urllib" in str(r.headers.get("User-Agent", ""))]
    assert len(by_test) == 7 and [r for r in patches if r not in by_test] == []


def test_suspending_a_kueue_dataset_deletes_its_jobs_and_resuming_queues_them_again(
    cluster: ThreadedKMock, operator: Any
) -> None:
    km = cluster
    km.request("POST", DS, manifest(SPEC, namespace=NS))
    wait_for(lambda: names(km, JOBS) == ["ds-b0-a1", "ds-b1-a1"], what="queued Jobs")
    kueue_admits(km, "ds-b0-a1")
    km.patch(f"{JOBS}/ds-b0-a1/status", {"status": {"completedIndexes": "0-4", "succeeded": 5}})
    wait_for(lambda: batch(km).get("shardsDone") == 5, what="progress")
    km.patch(f"{DS}/ds", {"spec": {"suspend": True}})
    wait_for(lambda: names(km, JOBS) == [], what="Jobs deleted (never unsuspended or resized)")
    wait_for(lambda: status(km).get("phase") == "Suspended", what="Suspended")
    assert batch(km)["completedShards"] == "0-4" and batch(km)["retries"] == 0
    km.patch(f"{DS}/ds", {"spec": {"suspend": False}})
    wait_for(lambda: names(km, JOBS) == ["ds-b0-a1", "ds-b1-a1"], what="queued again")
    j = job(km, "ds-b0-a1")
    assert j["spec"]["suspend"] is True and j["spec"]["completions"] == 5  # only the shards still missing
    assert batch(km)["retries"] == 0
    wait_for(lambda: "BatchPaused" in reasons(km), what="BatchPaused event")
