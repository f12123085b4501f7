"""Pure decisions: the batch window of a dataset, batch attempts, status aggregation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from builders import batch_body, batch_spec, job_status, pod, render_job, spec

from parallel_synth.cluster.observe import job_facts, observed_batch, pod_facts
from parallel_synth.decisions.batch import decide_batch
from parallel_synth.decisions.dataset import decide_dataset, window_size
from parallel_synth.decisions.effects import PatchStatus
from parallel_synth.decisions.facts import JobFacts
from parallel_synth.decisions.jobs import JobRequest
from parallel_synth.settings import OperatorSettings, Settings
from synth_contract import planning
from synth_contract.api import RenderBatchSpec, RenderBatchStatus, SynthDatasetStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
SETTINGS = Settings(operator=OperatorSettings(retry_backoff_seconds=10))


def run_dataset(s: Any, status: SynthDatasetStatus | None, batches: list[dict[str, Any]], **kw: Any) -> Any:
    return decide_dataset(name="ds", spec=s, status=status or SynthDatasetStatus(),
                          batches=[observed_batch(b) for b in batches], index_job=kw.get("index_job"), generation=1,
                          now=kw.get("now", NOW), settings=kw.get("settings", SETTINGS))


def as_body(new: Any, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return batch_body(new.name, new.spec, index=new.index, status=status)


@pytest.mark.parametrize(
    ("samples", "shard_size", "workers", "max_live"),
    [(10_000, 100, 4, 4), (1_000_000, 1000, 64, 32), (500_000_000, 1000, 2000, 32), (500_000_000, 1000, 8, 8)],
)
def test_window_is_bounded_by_workers_not_by_size(samples: int, shard_size: int, workers: int, max_live: int) -> None:
    s = spec(samples=samples, shardSize=shard_size, workers={"max": workers})
    d = run_dataset(s, None, [])
    window = window_size(s, SETTINGS.operator, planning.shards_per_batch(s))
    assert window <= max_live
    assert len(d.create) == min(window, planning.batch_count(s))
    assert sum(c.spec.parallelism for c in d.create) <= workers
    assert d.status.wire()["plan"]["liveBatches"] == len(d.create)
    assert len(json.dumps(d.status.wire())) < 64 * 1024
    assert [e.reason for e in d.events] == ["Planned"]


def test_finished_batch_is_folded_once_then_deleted() -> None:
    s = spec()  # 100 shards, workers.max 4 -> 7 shards per batch (planner default)
    first = run_dataset(s, None, [])
    b0 = first.create[0]
    done = as_body(b0, {"phase": "Succeeded", "completedShards": f"0-{b0.spec.shard_count - 1}",
                        "shardsDone": b0.spec.shard_count, "preemptions": 2, "retries": 1, "gpuSeconds": 50.0})
    others = [as_body(c) for c in first.create[1:]]
    d = run_dataset(s, first.status, [done, *others])
    per = b0.spec.shard_count
    assert d.delete == [b0.name]
    assert d.status.wire()["samples"]["completed"] == per * 100
    assert d.status.wire()["folded"]["batches"] == "0"
    assert d.status.wire()["preemptions"] == 2 and d.status.wire()["retries"] == 1
    assert sum(c["completed"] for c in d.status.wire()["categories"].values()) == per * 100
    assert [c.index for c in d.create] == [len(first.create)]  # the window slides by one
    # The operator died after writing the fold but before deleting: no double count.
    again = run_dataset(s, d.status, [done, *others, as_body(d.create[0])])
    assert again.delete == [b0.name]
    assert again.status.wire()["samples"]["completed"] == per * 100
    assert again.create == []


def test_failed_shards_make_the_dataset_degraded_and_are_listed_globally() -> None:
    s = spec()
    first = run_dataset(s, None, [])
    b1 = first.create[1]
    failed = as_body(b1, {"phase": "Failed", "completedShards": "0-2", "failedShards": "3-6", "shardsDone": 3})
    d = run_dataset(s, first.status, [as_body(first.create[0]), failed, *map(as_body, first.create[2:])])
    start = b1.spec.shard_start
    assert d.status.wire()["failedShards"] == f"{start + 3}-{start + 6}"
    assert d.status.wire()["phase"] == "Degraded"
    assert d.status.wire()["shards"]["failed"] == 4
    cond = {c["type"]: c for c in d.status.wire()["conditions"]}
    assert cond["Degraded"]["status"] == "True" and str(start + 3) in cond["Degraded"]["message"]


def test_suspend_stops_new_batches_and_scales_live_ones_to_zero() -> None:
    s = spec()
    first = run_dataset(s, None, [])
    live = [as_body(c) for c in first.create]
    d = run_dataset(spec(suspend=True), first.status, live)
    assert d.create == []
    assert set(d.set_parallelism.values()) == {0}
    assert d.status.wire()["phase"] == "Suspended"


def test_dataset_succeeds_when_every_batch_is_folded_and_its_index_job_completed() -> None:
    s = spec(samples=1000, shardSize=100, shardsPerBatch=5)
    d = run_dataset(s, None, [])
    bodies = [as_body(c, {"phase": "Succeeded", "completedShards": "0-4", "shardsDone": 5}) for c in d.create]
    indexed = JobFacts(name="ds-index", finished="Complete")
    d2 = run_dataset(s, d.status, bodies, index_job=indexed)
    assert d2.status.wire()["phase"] == "Succeeded" and d2.status.wire()["progress"] == "100.0%"
    assert d2.status.wire()["samples"]["completed"] == 1000
    assert d2.status.index is not None and d2.status.index.phase == "Succeeded"
    assert any(e.reason == "Finished" for e in d2.events)
    assert not d2.create_index_job


def test_finishing_is_part_of_the_dataset_decision() -> None:
    """Every shard committed: the dataset decides Running + the index Job in one step (no reversal)."""
    s = spec(samples=1000, shardSize=100, shardsPerBatch=5)
    d = run_dataset(s, None, [])
    bodies = [as_body(c, {"phase": "Succeeded", "completedShards": "0-4", "shardsDone": 5}) for c in d.create]
    waiting = run_dataset(s, d.status, bodies)  # no index Job yet
    assert waiting.status.phase == "Running" and waiting.status.index is not None
    assert waiting.status.index.phase == "Running" and waiting.create_index_job
    assert [e.reason for e in waiting.events] == ["Indexing"] and waiting.delete == [c.name for c in d.create]
    cond = {c.type: c for c in waiting.status.conditions}
    assert (cond["Ready"].status, cond["Ready"].reason) == ("False", "Indexing")
    assert (cond["Progressing"].status, cond["Progressing"].reason) == ("True", "Indexing")
    later = [NOW + timedelta(seconds=15 * i) for i in range(1, 5)]  # one tick after the other
    running = run_dataset(s, waiting.status, [], index_job=JobFacts(name="ds-index"), now=later[0])
    assert running.status.phase == "Running" and not running.create_index_job and running.events == []
    failed = run_dataset(s, running.status, [], index_job=JobFacts(name="ds-index", finished="Failed"), now=later[1])
    assert failed.status.phase == "Degraded" and failed.status.index.phase == "Failed"  # type: ignore[union-attr]
    assert [e.reason for e in failed.events] == ["IndexFailed"]
    again = run_dataset(s, failed.status, [], index_job=JobFacts(name="ds-index", finished="Failed"), now=later[2])
    assert again.events == [] and not any(isinstance(e, PatchStatus) for e in again.effects)
    done = run_dataset(s, running.status, [], index_job=JobFacts(name="ds-index", finished="Complete"),
                       now=later[3])
    assert done.status.phase == "Succeeded" and [e.reason for e in done.events] == ["Finished"]
    cond = {c.type: c for c in done.status.conditions}
    assert cond["Ready"].status == "True" and cond["Indexed"].status == "True"


@pytest.mark.parametrize(("workers", "per", "expected"), [(4, 7, 2), (16, 10, 3), (2000, 1000, 3), (3, 1, 3)])
def test_window_gives_every_worker_a_shard_plus_one_batch(workers: int, per: int, expected: int) -> None:
    assert window_size(spec(workers={"max": workers}), SETTINGS.operator, per) == expected


# --------------------------------------------------------------------------- one batch

BSPEC = batch_spec(shard_start=20, parallelism=2, max_attempts=2)


def run_batch(status: RenderBatchStatus | None, job: dict[str, Any] | None = None,
              pods: list[dict[str, Any]] | None = None, *, now: datetime = NOW,
              bspec: RenderBatchSpec = BSPEC, settings: Settings = SETTINGS,
              node_labels: dict[str, dict[str, str]] | None = None) -> Any:
    return decide_batch(dataset="ds", namespace="ns", name="ds-b2", spec=bspec, status=status or RenderBatchStatus(),
                        dataset_spec=spec(), job=job_facts(job) if job is not None else None,
                        pods=[pod_facts(p) for p in pods or []], generation=1, now=now, settings=settings,
                        node_labels=node_labels)


def the_job(req: JobRequest) -> dict[str, Any]:
    return render_job(spec(), request=req, owner_uid="u1", settings=SETTINGS.pods)


def test_batch_lifecycle_with_retry_of_missing_shards_only() -> None:
    d = run_batch(None)
    assert d.create_job is not None and (d.create_job.shard_offset, d.create_job.completions) == (0, 10)
    job = the_job(d.create_job)
    # Attempt 1 fails: shards 0-5 and 9 committed, 6-8 failed.
    failed = job_status(job, completed="0-5,9", failed="6-8", failed_pods=12, finished="Failed",
                        reason="FailedIndexes")
    d2 = run_batch(d.status, failed)
    assert d2.status.wire()["attempt"] == 2 and d2.delete_jobs == ["ds-b2-a1"]
    assert d2.status.wire()["completedShards"] == "0-5,9" and d2.status.wire()["retries"] == 13
    assert [e.reason for e in d2.events] == ["BatchRetried"]
    assert d2.create_job is None  # backoff first
    d3 = run_batch(d2.status, None, now=NOW + timedelta(seconds=SETTINGS.operator.retry_backoff_seconds + 1))
    assert d3.create_job is not None
    assert (d3.create_job.attempt, d3.create_job.shard_offset, d3.create_job.completions) == (2, 6, 3)
    job2 = the_job(d3.create_job)
    done = run_batch(d3.status, job_status(job2, completed="0-2", finished="Complete"))
    assert done.status.wire()["phase"] == "Succeeded" and done.status.wire()["completedShards"] == "0-9"
    assert done.status.wire()["samplesCompleted"] == 1000


def test_batch_fails_after_its_attempts_and_on_bad_configuration() -> None:
    d = run_batch(None)
    job = the_job(d.create_job)  # type: ignore[arg-type]
    bad = run_batch(d.status, job_status(job, completed="0-1", finished="Failed", reason="PodFailurePolicy"))
    assert bad.status.wire()["phase"] == "Failed" and bad.status.wire()["failedShards"] == "2-9"
    last = run_batch(d.status.model_copy(update={"attempt": 2}),
                     job_status(job, completed="0-8", finished="Failed", reason="FailedIndexes"))
    assert last.status.wire()["phase"] == "Failed" and last.status.wire()["failedShards"] == "9"
    assert [e.reason for e in last.events] == ["BatchFailed"]


def _ended(name: str, *, index: int, exit_code: int) -> dict[str, Any]:
    p = pod(name, batch="ds-b2", phase="Failed", started="2026-01-01T00:00:00Z", finished="2026-01-01T00:01:00Z",
            exit_code=exit_code, job="ds-b2-a1")
    p["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    return p


@pytest.mark.parametrize(("exits", "retries"), [
    ([2, 2], 0),  # both indexes hit the bad configuration: nothing was retried
    ([137, 2], 1),  # index 0 crashed and was re-run, then index 1 failed the Job
    ([3, 2], 0),  # exit 3 fails its index (FailIndex): not retried either
], ids=["two-exit-2", "a-crash-retried-then-exit-2", "exit-3-and-exit-2"])
def test_pods_the_failure_policy_never_retries_are_not_retries(exits: list[int], retries: int) -> None:
    """The real Job controller counts exit-2 and exit-3 pods in ``status.failed`` (issue #21)."""
    d = run_batch(None)
    job = job_status(the_job(d.create_job), completed="2-9", failed="0-1", failed_pods=len(exits),  # type: ignore[arg-type]
                     finished="Failed", reason="PodFailurePolicy")
    pods = [_ended(f"p{i}", index=i, exit_code=code) for i, code in enumerate(exits)]
    bad = run_batch(d.status, job, pods)
    assert bad.status.wire()["phase"] == "Failed"
    assert bad.status.wire().get("retries", 0) == retries


def test_preemption_counted_once_and_not_as_failure() -> None:
    d = run_batch(None)
    job = job_status(the_job(d.create_job), completed="0", active=1)  # type: ignore[arg-type]
    pods = [pod("p1", batch="ds-b2", phase="Failed", started="2026-01-01T00:00:00Z",
                finished="2026-01-01T00:10:00Z", exit_code=143, preempted_at="2026-01-01T00:09:30Z"),
            pod("p2", batch="ds-b2", phase="Running", started="2026-01-01T00:30:00Z")]
    d2 = run_batch(d.status, job, pods)
    assert d2.status.wire()["preemptions"] == 1 and d2.status.wire()["retries"] == 0
    assert d2.status.wire()["gpuSecondsFinished"] == 600.0
    assert d2.status.wire()["gpuSeconds"] == 600.0 + 1800.0  # p2 has run 30 minutes at NOW
    assert d2.status.wire()["active"] == 1
    d3 = run_batch(d2.status, job, pods)
    assert d3.status.wire()["preemptions"] == 1 and d3.status.wire()["gpuSecondsFinished"] == 600.0
    assert [e.reason for e in d2.events] == ["Preempted"] and d3.events == []


def test_pod_memory_is_bounded_without_double_counting() -> None:
    settings = Settings(operator=OperatorSettings(max_remembered_pods=3))
    pods = [pod(f"p{i}", batch="ds-b2", phase="Failed", finished=f"2026-01-01T00:{i:02d}:00Z",
                preempted_at=f"2026-01-01T00:{i:02d}:00Z", exit_code=143) for i in range(10)]
    d = run_batch(None)
    job = job_status(the_job(d.create_job), active=0)  # type: ignore[arg-type]
    st = d.status
    for _ in range(3):
        st = run_batch(st, job, pods, settings=settings).status
    assert st.preemptions == 10
    assert len(st.preempted_pods) == 3 and len(st.finished_pods) == 3


def test_parallelism_change_patches_the_job_in_place() -> None:
    d = run_batch(None)
    job = job_status(the_job(d.create_job), active=2)  # type: ignore[arg-type]
    d2 = run_batch(d.status, job, bspec=BSPEC.model_copy(update={"parallelism": 5}))
    assert d2.patch_parallelism == 5 and d2.create_job is None
    d3 = run_batch(d.status, job, bspec=BSPEC.model_copy(update={"parallelism": 0}))
    assert d3.patch_parallelism == 0 and d3.status.wire()["phase"] == "Suspended"


@pytest.mark.parametrize(
    ("labels_by_node", "expected_spot"),
    [
        ({"n-spot": {"cloud.google.com/gke-spot": "true"}, "n-od": {}}, 1800.0),  # by node label
        ({"n-spot": {"karpenter.sh/capacity-type": "spot"}, "n-od": {"karpenter.sh/capacity-type": "on-demand"}}, 1800.0),
        ({"n-spot": {}, "n-od": {}}, 0.0),  # both nodes on-demand although the batch asked for spot
        (None, 3600.0),  # no node labels known: the batch's capacity type (spot) for every pod
    ],
    ids=["gke", "karpenter", "all-on-demand", "unknown-nodes"],
)
def test_gpu_time_is_split_by_the_node_each_pod_ran_on(
    labels_by_node: dict[str, dict[str, str]] | None, expected_spot: float
) -> None:
    d = run_batch(None)
    job = job_status(the_job(d.create_job), completed="0", active=1)
    pods = [pod(name, batch="ds-b2", phase="Succeeded", started="2026-01-01T00:00:00Z",
                finished="2026-01-01T00:30:00Z", job="ds-b2-a1", node=node)
            for name, node in (("p-spot", "n-spot"), ("p-od", "n-od"))]
    first = run_batch(d.status, job, pods, node_labels=labels_by_node)
    assert first.status.wire()["gpuSeconds"] == 3600.0
    assert first.status.wire()["spotGpuSeconds"] == expected_spot
    again = run_batch(first.status, job, pods, node_labels=labels_by_node)
    assert again.status.wire()["spotGpuSeconds"] == expected_spot  # each finished pod counted once
