"""Short fixtures for operator tests: specs, Jobs and Pods as the Job controller writes them."""

from __future__ import annotations

from typing import Any

from synth_contract.api import SynthDatasetSpec

BASE_SPEC: dict[str, Any] = {
    "samples": 10_000,
    "shardSize": 100,
    "output": {"uri": "s3://bucket/data", "credentialsSecret": "s3-creds", "endpointUrl": "http://minio:9000"},
    "image": "ghcr.io/example/synth-render:1.0",
    "workers": {"min": 0, "max": 4},
}


def spec(**overrides: Any) -> SynthDatasetSpec:
    raw = {**BASE_SPEC, **overrides}
    return SynthDatasetSpec.model_validate(raw)


def job_status(job: dict[str, Any], *, completed: str = "", failed: str = "", active: int = 0,
               failed_pods: int = 0, finished: str | None = None, reason: str = "") -> dict[str, Any]:
    """Set a Job's status the way the Job controller would."""
    st: dict[str, Any] = {"active": active, "failed": failed_pods, "succeeded": 0}
    if completed:
        st["completedIndexes"] = completed
    if failed:
        st["failedIndexes"] = failed
    if finished:
        st["conditions"] = [{"type": finished, "status": "True", "reason": reason, "message": ""}]
    return {**job, "status": st}


def pod(name: str, *, batch: str, phase: str = "Running", started: str = "2026-01-01T00:00:00Z",
        finished: str | None = None, exit_code: int | None = None, preempted_at: str | None = None,
        job: str | None = None) -> dict[str, Any]:
    """A rendering pod of a batch."""
    status: dict[str, Any] = {"phase": phase, "startTime": started}
    if finished is not None:
        status["containerStatuses"] = [{"name": "render", "state": {"terminated": {
            "exitCode": 0 if exit_code is None else exit_code, "finishedAt": finished}}}]
    if preempted_at is not None:
        status["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                                 "lastTransitionTime": preempted_at}]
    labels = {"parallelsynth.io/batch": batch, "app.kubernetes.io/managed-by": "parallel-synth"}
    if job:
        labels["batch.kubernetes.io/job-name"] = job
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "status": status}
