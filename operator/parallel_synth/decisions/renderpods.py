"""What the cluster admin decides about rendering pods, applied to the pod specs ``jobs.py`` builds.

Pure functions of the dataset spec and :class:`~parallel_synth.settings.PodSettings`:

* scratch space: an ``ephemeral-storage`` request and a ``sizeLimit`` on the ``/tmp`` emptyDir,
  sized from one shard (``shardSize`` x the planner's ``bytesPerSample`` estimate), so the
  scheduler places pods where the disk fits and a runaway pod is evicted, not the node's disk;
* ``imagePullSecrets`` for the renderer image (chart value ``renderer.imagePullSecrets``);
* the shared volume that makes ``file://`` outputs safe on a cluster (``file_output_claim``);
* ``SYNTH_RENDERER_IMAGE``: the image reference, recorded by the renderer in each shard manifest.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from parallel_synth.settings import PodSettings
from synth_contract import multiview
from synth_contract.api import SynthDatasetSpec

SHARED_VOLUME = "shared-output"
IMAGE_ENV = "SYNTH_RENDERER_IMAGE"
MIB = 1024**2


def shard_bytes(spec: SynthDatasetSpec) -> int:
    """Stored bytes of one full shard, from the planner's per-sample estimate (``spec.estimates``)."""
    return spec.shard_size * math.ceil(multiview.estimated_bytes_per_sample(spec))  # all views


def scratch_bytes(spec: SynthDatasetSpec, settings: PodSettings) -> int:
    """Scratch a rendering pod needs in /tmp: the shard's tar, a resumed copy of it, and overhead.

    Rounded up to whole MiB (a quantity the API and humans both read easily).
    """
    need = 2 * shard_bytes(spec) + settings.scratch_overhead_bytes
    return math.ceil(need / MIB) * MIB


def quantity(n_bytes: int) -> str:
    """Bytes as a Kubernetes quantity in Mi (exact: callers pass whole MiB)."""
    return f"{math.ceil(n_bytes / MIB)}Mi"


def finish_pod(
    pod_spec: dict[str, Any], spec: SynthDatasetSpec, settings: PodSettings, *, scratch: bool = True
) -> dict[str, Any]:
    """A copy of ``pod_spec`` (one container, a ``tmp`` emptyDir) with the admin's settings applied."""
    pod = copy.deepcopy(pod_spec)
    container = pod["containers"][0]
    container.setdefault("env", []).append({"name": IMAGE_ENV, "value": spec.image})
    if scratch:
        size = quantity(scratch_bytes(spec, settings))
        res = container.setdefault("resources", {})
        res.setdefault("requests", {})["ephemeral-storage"] = size
        for vol in pod.get("volumes") or []:
            if vol.get("name") == "tmp" and "emptyDir" in vol:
                vol["emptyDir"]["sizeLimit"] = size
    if settings.renderer_image_pull_secrets:
        have = list(pod.get("imagePullSecrets") or [])
        names = {s.get("name") for s in have}
        have += [{"name": n} for n in settings.renderer_image_pull_secrets if n not in names]
        pod["imagePullSecrets"] = have
    if settings.file_output_claim and spec.output.uri.startswith("file://"):
        pod.setdefault("volumes", []).append(
            {"name": SHARED_VOLUME, "persistentVolumeClaim": {"claimName": settings.file_output_claim}})
        container.setdefault("volumeMounts", []).append(
            {"name": SHARED_VOLUME, "mountPath": settings.file_output_path})
    return pod
