"""Builders for the objects tests feed the code: dataset specs, manifests, batches, Jobs and Pods.

One module for every test folder (``tests/`` is on ``sys.path`` through ``tests/conftest.py``):
``from builders import spec, wire, pod``. A spec starts from a named base, the wire form users
write (camelCase); keyword arguments replace its top-level fields, so a test names exactly what it
changes::

    spec(workers={"max": 8})  # the CLUSTER base
    spec(RENDER, render={**RENDER["render"], "passes": ["rgb"]})  # keep the rest of the tiny render
    write_manifest(tmp_path / "m.yaml", wire(LOCAL, output=tmp_path / "out"), name="tiny")

``output=`` may be a folder (``Path``): the dataset is written there (a ``file://`` URI).
The operator's builders are imported where they are used, so renderer tests never load them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from synth_contract.api import RenderBatchSpec, SynthDatasetSpec
from synth_contract.times import format_time

API_VERSION = "parallelsynth.io/v1alpha1"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
"""The example manifests users start from (examples/*.yaml)."""

SMALL: Mapping[str, Any] = {"samples": 10_000, "output": {"uri": "file:///tmp/x"}, "image": "r:1"}
"""The least a spec needs: samples, output.uri and image (planning, validation)."""

CLUSTER: Mapping[str, Any] = {
    "samples": 10_000,
    "shardSize": 100,
    "output": {"uri": "s3://bucket/data", "credentialsSecret": "s3-creds", "endpointUrl": "http://minio:9000"},
    "image": "ghcr.io/example/synth-render:1.0",
    "workers": {"min": 0, "max": 4},
}
"""A dataset on a cluster: S3 behind a credentials Secret and a MinIO endpoint, up to 4 workers."""

FLEET: Mapping[str, Any] = {
    "samples": 400_000,
    "shardSize": 100,
    "output": {"uri": "s3://bucket/prefix"},
    "image": "renderer:test",
    "throughput": {"targetPerDay": 200_000},
    "workers": {"min": 1, "max": 50},
    "estimates": {"gpuSecondsPerSample": 10},
    "pricing": {"spotPerGpuHour": 0.3, "onDemandPerGpuHour": 1.0},
    "nodePool": {"spot": True, "onDemandFallback": True},
    "categories": [{"name": "geometry"}],  # no simulations: GPU time is estimates x samples exactly
}
"""A fleet to scale and bill: 400k samples at 200k/day, 10 GPU-seconds each, spot with fallback."""

RENDER: Mapping[str, Any] = {
    "samples": 8,
    "seed": 11,
    "shardSize": 4,
    "render": {"resolutions": [{"width": 64, "height": 64}], "samples": {"min": 4, "max": 4},
               "denoise": False, "passes": ["rgb", "depth", "segmentation", "normals"]},
    # 4 spp without the denoiser is noisy by design (fast renders); the gate's noise rule is
    # tested in test_renderer_quality, so it is relaxed here.
    "quality": {"minScore": 0.2, "minPassRate": 0.5, "maxRerenders": 1, "maxNoiseSigma": 0.5},
    "output": {"uri": "file:///tmp/unused"},
    "image": "renderer:test",
}
"""Renders in a fraction of a second per sample: 64x64 at 4 spp, 8 samples in shards of 4."""

OPEN_GATE: Mapping[str, Any] = {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0, "maxNoiseSigma": 1.0}
"""A quality gate that keeps every sample: for renders too small or too noisy to judge."""

LOCAL: Mapping[str, Any] = {
    "samples": 110,
    "seed": 3,
    "version": "1",
    "shardSize": 10,
    "render": {"passes": ["rgb", "depth", "segmentation"]},
    "quality": {"minScore": 0.5, "minPassRate": 0.9},
    "retry": {"perShard": 2, "attempts": 1},
    "image": "ghcr.io/parallel-synth/renderer:test",
}
"""Local mode with the fake renderer: 110 samples in 11 shards over all categories (no output: pass one)."""


def wire(base: Mapping[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
    """A spec's wire form: a copy of ``base`` (CLUSTER) whose top-level fields ``fields`` replace."""
    out = copy.deepcopy(dict(CLUSTER if base is None else base))
    out.update(fields)
    if isinstance(out.get("output"), Path):
        out["output"] = {"uri": out["output"].as_uri()}
    return out


def spec(base: Mapping[str, Any] | None = None, /, **fields: Any) -> SynthDatasetSpec:
    """The validated spec of ``wire(base, **fields)``."""
    return SynthDatasetSpec.model_validate(wire(base, **fields))


def manifest(spec_wire: Mapping[str, Any], *, name: str = "ds", namespace: str | None = None,
             generation: int | None = None, status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A SynthDataset object as a user applies it (with ``status``: as the API server returns it)."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if generation is not None:
        meta["generation"] = generation
    obj: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "SynthDataset", "metadata": meta,
                           "spec": copy.deepcopy(dict(spec_wire))}
    if status is not None:
        obj["status"] = dict(status)
    return obj


def load_example(path: Path) -> dict[str, Any]:
    """An example manifest as a fresh dict (tests may change it)."""
    return dict(yaml.safe_load(path.read_text()))


def with_field(obj: Mapping[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with the field at ``dotted`` (``spec.output.uri``) set to ``value``.

    Missing levels are created, so a test can name a field the object lacks.
    """
    out = copy.deepcopy(dict(obj))
    node = out
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


def write_manifest(path: Path, spec_wire: Mapping[str, Any], *, name: str = "ds") -> Path:
    """A manifest file for ``synthctl`` (YAML), at ``path``."""
    path.write_text(yaml.safe_dump(manifest(spec_wire, name=name)))
    return path


def batch_spec(*, dataset: str = "ds", shard_start: int = 0, shard_count: int = 10, **fields: Any) -> RenderBatchSpec:
    """A RenderBatch's spec (snake_case fields, as the model takes them)."""
    return RenderBatchSpec(dataset=dataset, shard_start=shard_start, shard_count=shard_count, **fields)


def batch_body(name: str, bspec: RenderBatchSpec, *, index: int,
               status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A RenderBatch as the dataset decision lists it: its index label, spec and status."""
    return {"metadata": {"name": name, "labels": {"parallelsynth.io/batch-index": str(index)}},
            "spec": bspec.wire(), "status": dict(status or {})}


def render_job(s: SynthDatasetSpec, *, request: Any = None, batch: str = "ds-b0", namespace: str = "ns",
               bspec: RenderBatchSpec | None = None, attempt: int = 1, offset: int = 0, completions: int | None = None,
               parallelism: int = 1, owner_uid: str = "u", settings: Any = None) -> dict[str, Any]:
    """The Job the operator builds for one attempt of a batch of dataset ``ds`` (default settings).

    ``request``: the JobRequest a batch decision returned. Otherwise the request is made of the
    other arguments: without ``bspec`` the batch is shards 0-9 at ``parallelism``, and
    ``completions`` defaults to the batch's shard count.
    """
    from parallel_synth.decisions.jobs import JobRequest, Owner, build_job
    from parallel_synth.settings import PodSettings

    if request is None:
        bspec = bspec or batch_spec(parallelism=parallelism)
        request = JobRequest(dataset="ds", namespace=namespace, batch=batch, batch_spec=bspec, attempt=attempt,
                             shard_offset=offset, parallelism=parallelism,
                             completions=bspec.shard_count if completions is None else completions)
    return build_job(request, s, Owner(kind="RenderBatch", name=request.batch, uid=owner_uid),
                     settings=settings or PodSettings())


def index_job(s: SynthDatasetSpec, *, name: str = "ds", namespace: str = "ns", settings: Any = None) -> dict[str, Any]:
    """The index Job the operator builds once every shard of dataset ``name`` is committed."""
    from parallel_synth.decisions.jobs import Owner, build_index_job
    from parallel_synth.settings import PodSettings

    return build_index_job(name, namespace, s, Owner(kind="SynthDataset", name=name, uid="u1"),
                           settings=settings or PodSettings())


def job_status(j: dict[str, Any], *, completed: str = "", failed: str = "", active: int = 0,
               failed_pods: int = 0, finished: str | None = None, reason: str = "") -> dict[str, Any]:
    """``j`` with the status the Job controller would write."""
    st: dict[str, Any] = {"active": active, "failed": failed_pods, "succeeded": 0}
    if completed:
        st["completedIndexes"] = completed
    if failed:
        st["failedIndexes"] = failed
    if finished:
        st["conditions"] = [{"type": finished, "status": "True", "reason": reason, "message": ""}]
    return {**j, "status": st}


Time = str | datetime


def _time(t: Time) -> str:
    return t if isinstance(t, str) else format_time(t)


def pod(name: str = "p", *, batch: str | None = None, job: str | None = None, phase: str = "Running",
        started: Time | None = "2026-01-01T00:00:00Z", finished: Time | None = None, exit_code: int | None = None,
        preempted_at: Time | None = None, unschedulable: bool = False, node: str | None = None) -> dict[str, Any]:
    """A Pod as the kubelet and the scheduler report it.

    ``finished``: its ``render`` container terminated then (with ``exit_code``, default 0);
    ``preempted_at``: a DisruptionTarget condition; ``unschedulable``: PodScheduled=False;
    ``batch``/``job``: the labels of a rendering pod; ``node``: the node it runs on.
    """
    status: dict[str, Any] = {"phase": phase}
    if started is not None:
        status["startTime"] = _time(started)
    if finished is not None:
        status["containerStatuses"] = [{"name": "render", "state": {"terminated": {
            "exitCode": 0 if exit_code is None else exit_code, "finishedAt": _time(finished)}}}]
    if preempted_at is not None:
        status["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                                 "lastTransitionTime": _time(preempted_at)}]
    if unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]
    meta: dict[str, Any] = {"name": name}
    if batch is not None:
        meta["labels"] = {"parallelsynth.io/batch": batch, "app.kubernetes.io/managed-by": "parallel-synth"}
        if job:
            meta["labels"]["batch.kubernetes.io/job-name"] = job
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status}
    if node is not None:
        out["spec"] = {"nodeName": node}
    return out
