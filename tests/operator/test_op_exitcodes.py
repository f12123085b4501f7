"""Exit code 3 (the quality gate failed a shard): failed for good, never re-rendered by a later attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from builders import batch_spec, job_status, pod, render_job, spec

from parallel_synth.cluster.observe import job_facts, pod_facts
from parallel_synth.decisions.batch import decide_batch
from parallel_synth.decisions.jobs import JobRequest
from parallel_synth.settings import OperatorSettings, Settings
from synth_contract.api import RenderBatchStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
SETTINGS = Settings(operator=OperatorSettings(retry_backoff_seconds=10))
BSPEC = batch_spec(shard_start=20, parallelism=2, max_attempts=3)


def run_batch(status: RenderBatchStatus | None, job: dict[str, Any] | None = None,
              pods: list[dict[str, Any]] | None = None, *, now: datetime = NOW) -> Any:
    return decide_batch(dataset="ds", namespace="ns", name="ds-b2", spec=BSPEC, status=status or RenderBatchStatus(),
                        dataset_spec=spec(), job=job_facts(job) if job is not None else None,
                        pods=[pod_facts(p) for p in pods or []], generation=1, now=now, settings=SETTINGS)


def the_job(req: JobRequest) -> dict[str, Any]:
    return render_job(spec(), request=req, owner_uid="u1", settings=SETTINGS.pods)


def ended_pod(name: str, *, job: str, index: int, exit_code: int) -> dict[str, Any]:
    p = pod(name, batch="ds-b2", phase="Failed", finished="2026-01-01T00:30:00Z", exit_code=exit_code, job=job)
    p["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    return p


def test_a_shard_failed_by_the_quality_gate_is_not_retried() -> None:
    d = run_batch(None)
    job = the_job(d.create_job)
    # Attempt 1: index 3 exited 3 (FailIndex), index 7 crashed (exit 1, retries used up), the rest committed.
    pods = [ended_pod("p3", job="ds-b2-a1", index=3, exit_code=3),
            ended_pod("p7", job="ds-b2-a1", index=7, exit_code=1)]
    failed = job_status(job, completed="0-2,4-6,8-9", failed="3,7", failed_pods=5, finished="Failed",
                        reason="FailedIndexes")
    d2 = run_batch(d.status, failed, pods)
    assert d2.status.wire()["attempt"] == 2 and d2.status.wire()["qualityFailedShards"] == "3"
    d3 = run_batch(d2.status, None, now=NOW + timedelta(seconds=SETTINGS.operator.retry_backoff_seconds + 1))
    assert d3.create_job is not None
    assert (d3.create_job.shard_offset, d3.create_job.completions) == (7, 1), "only shard 7 is rendered again"
    job2 = the_job(d3.create_job)
    done = run_batch(d3.status, job_status(job2, completed="0", finished="Complete"))
    assert done.status.wire()["phase"] == "Failed" and done.status.wire()["failedShards"] == "3"
    assert done.status.wire()["completedShards"] == "0-2,4-9"
    assert "quality gate" in done.status.wire()["message"] and "exit 3" in done.status.wire()["message"]
    assert [(e.reason, e.message.split(" failed")[0]) for e in done.events] == [("BatchFailed", "shards 23")]


def test_a_batch_whose_only_loss_is_the_gate_fails_at_once() -> None:
    d = run_batch(None)
    job = the_job(d.create_job)
    pods = [ended_pod("p5", job="ds-b2-a1", index=5, exit_code=3)]
    final = run_batch(d.status, job_status(job, completed="0-4,6-9", failed="5", failed_pods=1, finished="Failed",
                                           reason="FailedIndexes"), pods)
    assert final.create_job is None and final.delete_jobs == []
    assert final.status.wire()["phase"] == "Failed" and final.status.wire()["failedShards"] == "5"


def test_other_exit_codes_are_still_retried() -> None:
    d = run_batch(None)
    job = the_job(d.create_job)
    pods = [ended_pod("p5", job="ds-b2-a1", index=5, exit_code=1),
            ended_pod("old", job="ds-b2-a0", index=6, exit_code=3)]  # another Job's pod: not this attempt's
    d2 = run_batch(d.status, job_status(job, completed="0-4,6-9", failed="5", failed_pods=4, finished="Failed",
                                        reason="FailedIndexes"), pods)
    assert d2.status.wire()["attempt"] == 2 and not d2.status.quality_failed_shards


def test_the_crd_keeps_the_quality_failed_shards() -> None:
    """The API server prunes status fields its schema lacks: the record must be in the CRD."""
    crd = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds" / "parallelsynth.io_renderbatches.yaml")
                         .read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["qualityFailedShards"]["type"] == "string"
