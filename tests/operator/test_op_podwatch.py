"""Pods lost between two batch ticks still count (reliability finding 6).

A pod lost with its node is marked DisruptionTarget + Failed and removed within a second; the
batch timer, which counts from the pods it lists, used to miss it (status.preemptions 0 for 2
lost pods in the node-loss scenario). The pod watch remembers it until a tick has counted it.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from builders import batch_spec, job_status, manifest, pod, render_job, spec, wire
from kmockx import ThreadedKMock
from opcluster import DS, JOBS, NS, PODS, RB
from waiting import wait_for

from parallel_synth.cluster.observe import job_facts, pod_facts
from parallel_synth.cluster.pods import PodMemory
from parallel_synth.decisions.batch import decide_batch
from parallel_synth.decisions.facts import PodFacts
from parallel_synth.settings import Settings
from synth_contract.api import RenderBatchStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
SETTINGS = Settings()
BSPEC = batch_spec(shard_count=4, parallelism=2, max_attempts=2)


def tick(status: RenderBatchStatus | None, pods: list[dict[str, Any]], gone: list[dict[str, Any]]) -> Any:
    job = None
    if status is not None:
        req = decide_batch(dataset="ds", namespace="ns", name="ds-b0", spec=BSPEC, status=RenderBatchStatus(),
                           dataset_spec=spec(), job=None, pods=[], generation=1, now=NOW, settings=SETTINGS).create_job
        assert req is not None
        job = job_status(render_job(spec(), request=req, owner_uid="u1", settings=SETTINGS.pods), active=2)
    return decide_batch(dataset="ds", namespace="ns", name="ds-b0", spec=BSPEC, status=status or RenderBatchStatus(),
                        dataset_spec=spec(), job=job_facts(job) if job is not None else None,
                        pods=[pod_facts(p) for p in pods], generation=1, now=NOW, settings=SETTINGS,
                        gone_pods=[pod_facts(p) for p in gone])


def lost(name: str) -> dict[str, Any]:
    """A pod evicted from a lost node: Failed with DisruptionTarget, its container never reported."""
    p = pod(name, batch="ds-b0", phase="Failed", started="2026-01-01T00:00:00Z", preempted_at="2026-01-01T00:10:00Z")
    p["metadata"].update(namespace="ns", uid=f"uid-{name}")
    return p


def reclaimed(name: str) -> dict[str, Any]:
    """A spot pod reclaimed, its container ended with SIGTERM (143), removed at once."""
    p = pod(name, batch="ds-b0", phase="Failed", started="2026-01-01T00:00:00Z", finished="2026-01-01T00:10:00Z",
            exit_code=143, preempted_at="2026-01-01T00:09:30Z")
    p["metadata"].update(namespace="ns", uid=f"uid-{name}")
    return p


def test_a_pod_gone_before_any_tick_listed_it_is_one_preemption_and_no_retry() -> None:
    st = tick(None, [], []).status
    d = tick(st, [pod("p2", batch="ds-b0")], [lost("p1")])
    assert d.status.wire()["preemptions"] == 1 and d.status.wire()["retries"] == 0
    assert d.status.wire()["active"] == 1  # the lost pod is not a worker
    gpu = tick(st, [], [reclaimed("p3")])
    assert gpu.status.wire()["preemptions"] == 1 and gpu.status.wire()["gpuSecondsFinished"] == 600.0  # its GPU time too
    assert [e.reason for e in d.events] == ["Preempted"]
    # The same pod again (a tick whose status write failed keeps the memory): still once.
    again = tick(d.status, [pod("p2", batch="ds-b0")], [lost("p1")])
    assert again.status.wire()["preemptions"] == 1 and again.events == []


def test_a_pod_both_listed_and_remembered_counts_once_whatever_the_order() -> None:
    st = tick(None, [], []).status
    both = tick(st, [lost("p1")], [lost("p1")])
    assert both.status.wire()["preemptions"] == 1
    listed_first = tick(tick(st, [lost("p1")], []).status, [], [lost("p1")])
    assert listed_first.status.wire()["preemptions"] == 1
    remembered_first = tick(tick(st, [], [lost("p1")]).status, [lost("p1")], [])
    assert remembered_first.status.wire()["preemptions"] == 1
    two = tick(st, [], [lost("p1"), lost("p2")])
    assert two.status.wire()["preemptions"] == 2


def test_memory_keeps_only_disrupted_or_ended_pods_until_a_tick_has_used_them() -> None:
    mem = PodMemory()
    running = pod("p0", batch="ds-b0")
    running["metadata"].update(namespace="ns", uid="uid-p0")
    assert not mem.record("MODIFIED", running, now=0.0)  # a tick lists it while it runs
    assert not mem.record("DELETED", running, now=0.0)  # deleted unfinished, no disruption: nothing to count
    done = copy.deepcopy(running)
    done["status"] = {"phase": "Succeeded", "startTime": "2026-01-01T00:00:00Z"}
    assert not mem.record("MODIFIED", done, now=0.0)  # still listable
    assert mem.record("DELETED", done, now=0.0)  # gone: its GPU time must not be lost
    assert mem.record("MODIFIED", lost("p1"), now=1.0)
    taken = mem.take("ns", "ds-b0")
    assert sorted(p.name for p in taken.pods) == ["p0", "p1"]
    assert mem.take("ns", "other").pods == ()
    mem.record("DELETED", lost("p1"), now=2.0)  # newer state after the tick took it: kept
    mem.forget(taken)
    assert [p.name for p in mem.take("ns", "ds-b0").pods] == ["p1"]


def test_memory_is_bounded_in_time_and_size() -> None:
    mem = PodMemory(ttl=60.0, limit=3)
    for i in range(5):
        mem.record("MODIFIED", lost(f"p{i}"), now=float(i))
    assert len(mem) == 3
    assert sorted(p.name for p in mem.take("ns", "ds-b0").pods) == ["p2", "p3", "p4"]
    mem.record("MODIFIED", lost("p9"), now=100.0)  # the others are older than a minute
    assert [p.name for p in mem.take("ns", "ds-b0").pods] == ["p9"]


def test_memory_keeps_parsed_facts_and_its_queue_stays_bounded_under_repeated_events() -> None:
    """Issue #22 item 12 / #24: one parse per event, no pod dicts kept, no scan of every entry."""
    mem = PodMemory(ttl=60.0, limit=100)
    for i in range(5_000):  # the same 50 pods, each modified 100 times
        mem.record("MODIFIED", lost(f"p{i % 50}"), now=i / 1000)
    assert len(mem) == 50
    taken = mem.take("ns", "ds-b0")
    assert all(isinstance(p, PodFacts) for p in taken.pods) and len(taken.pods) == 50
    assert len(mem._order) <= 2 * len(mem) + 64  # stale queue items are compacted away
    mem.forget(taken)
    assert len(mem) == 0 and mem.take("ns", "ds-b0").pods == ()
    mem.record("MODIFIED", lost("late"), now=1_000.0)  # everything older than the ttl is gone
    assert [p.name for p in mem.take("ns", "ds-b0").pods] == ["late"]


DATASET = manifest(wire(samples=300, shardSize=100, workers={"max": 1},
                        output={"uri": "s3://bucket/data", "credentialsSecret": "creds"}), namespace=NS)


@pytest.mark.integration
def test_pods_evicted_and_removed_between_two_ticks_are_counted(cluster: ThreadedKMock, operator: Any) -> None:
    km = cluster
    km.request("POST", DS, DATASET)
    wait_for(lambda: "ds-b0-a1" in [j["metadata"]["name"] for j in km.items(JOBS)], what="Job")
    labels = km.request("GET", f"{JOBS}/ds-b0-a1")["spec"]["template"]["metadata"]["labels"]
    km.patch(f"{JOBS}/ds-b0-a1/status", {"status": {"active": 1}})
    for name in ("ds-b0-a1-0-lost1", "ds-b0-a1-1-lost2"):  # the node lifecycle controller, then removal
        km.request("POST", PODS, {"metadata": {"name": name, "namespace": NS, "labels": labels}, "status": {
            "phase": "Failed", "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                            "lastTransitionTime": "2026-01-01T00:02:00Z"}]}})
        km.request("DELETE", f"{PODS}/{name}")
    rb = wait_for(lambda: (b := km.request("GET", f"{RB}/ds-b0")) and b["status"].get("preemptions") == 2 and b,
                  what="both lost pods counted")
    assert rb["status"]["retries"] == 0
    wait_for(lambda: (km.request("GET", f"{DS}/ds").get("status") or {}).get("preemptions") == 2,
             what="dataset preemptions")
