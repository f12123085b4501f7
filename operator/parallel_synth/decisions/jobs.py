"""Build the Indexed ``batch/v1`` Job of one RenderBatch attempt, and the dataset's index Job.

Pure functions: a Job is built in memory as a plain dict (labels, owner reference and all) and
sent by the adapter in one request. Reading a Job is :func:`parallel_synth.cluster.observe.job_facts`.

Retry strategy: attempt 1 covers the whole batch. A retry attempt covers the smallest contiguous
window of the batch that holds every shard not yet committed (``shardOffset`` .. last missing),
so a batch that lost its tail re-renders only the tail. Shards inside that window that are
already committed cost one pod start each: the renderer exits 0 at once when a shard's manifest
exists (the commit marker, see docs/CONTRACTS.md). This keeps the worker contract
``shard = SHARD_START + JOB_COMPLETION_INDEX`` unchanged while never rendering a shard twice.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from parallel_synth.decisions import kueue, podtemplate, renderpods
from parallel_synth.decisions.cost import SPOT_LABELS, spot_label_values
from parallel_synth.decisions.facts import ANNOTATION_SHARD_OFFSET, CONTAINER, LABEL_BATCH_UID
from parallel_synth.settings import PodSettings
from synth_contract.api import (
    API_VERSION,
    GROUP,
    LABEL_BATCH,
    LABEL_DATASET,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    RenderBatchSpec,
    SynthDatasetSpec,
)
from synth_contract.exitcodes import EXIT_BAD_CONFIG, EXIT_QUALITY_GATE, EXIT_SIGTERM

LABEL_ATTEMPT = f"{GROUP}/attempt"
MAX_NAME = 63
"""A DNS label: the longest name of a RenderBatch, ConfigMap or label value we write."""
MAX_INDEXED_COMPLETIONS = 100_000
"""The API server's bound on an Indexed Job with ``backoffLimitPerIndex`` (our render Jobs)."""
MAX_JOB_NAME = MAX_NAME - len(f"-{MAX_INDEXED_COMPLETIONS - 1}")
"""57: an Indexed Job's pods are named and given the hostname ``{job}-{index}``, which the API
server requires to be a DNS label too (422 on create otherwise), for every index up to 99999."""

# Taints of spot capacity on the common providers (the labels are cost.SPOT_LABELS).
SPOT_TAINTS: tuple[tuple[str, str], ...] = (
    ("cloud.google.com/gke-spot", "true"),
    ("eks.amazonaws.com/capacityType", "SPOT"),
    ("kubernetes.azure.com/scalesetpriority", "spot"),
)


@dataclass(frozen=True)
class Owner:
    """The object that owns a child (for ``ownerReferences``)."""

    kind: str
    name: str
    uid: str | None
    api_version: str = API_VERSION

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid or "",
            "controller": True,
            "blockOwnerDeletion": True,
        }


def owner_references(owner: Owner) -> list[dict[str, Any]]:
    """Owner references; none when the owner has no uid (never happens on a real cluster)."""
    return [owner.reference()] if owner.uid else []


def short_name(base: str, suffix: str, *, limit: int = MAX_NAME) -> str:
    """``{base}{suffix}`` within ``limit`` characters; a long base is cut and given a hash of
    the whole base (deterministic: the same inputs always give the same name)."""
    if len(base) + len(suffix) <= limit:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:6]
    keep = limit - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-')}-{digest}{suffix}"


def job_name(batch: str, attempt: int) -> str:
    """Deterministic Job name of a batch attempt: a re-created Job answers 409, not a duplicate.

    At most :data:`MAX_JOB_NAME` characters, so every pod hostname ``{job}-{index}`` is a DNS label.
    """
    return short_name(batch, f"-a{attempt}", limit=MAX_JOB_NAME)


def labels(dataset: str, batch: str) -> dict[str, str]:
    """The fixed labels (docs/ARCHITECTURE.md, "Fixed names"), put on everything the operator creates."""
    return {LABEL_DATASET: dataset, LABEL_BATCH: batch, LABEL_MANAGED_BY: MANAGED_BY}


# --------------------------------------------------------------------------- building


_POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""Every pod we create: non-root, default seccomp (the "restricted" Pod Security Standard)."""

_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def _spot_affinity(capacity: str) -> dict[str, Any]:
    if capacity == "on-demand":
        # Required: none of the spot labels (NotIn also matches nodes without the label).
        term = {"matchExpressions": [{"key": k, "operator": "NotIn", "values": spot_label_values(v)}
                                     for k, v in SPOT_LABELS.items()]}
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    return {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [{"key": k, "operator": "In",
                                                                     "values": spot_label_values(v)}]}}
                for k, v in SPOT_LABELS.items()
            ]
        }
    }


def tolerations(spec: SynthDatasetSpec, capacity: str) -> list[dict[str, Any]]:
    """GPU taint, spot taints of the common providers (when on spot), then the user's own."""
    out: list[dict[str, Any]] = []
    if spec.node_pool.gpus_per_worker > 0:
        out.append({"key": spec.node_pool.gpu_resource, "operator": "Exists", "effect": "NoSchedule"})
    if spec.node_pool.spot and capacity == "spot":
        out += [{"key": k, "operator": "Equal", "value": v, "effect": "NoSchedule"} for k, v in SPOT_TAINTS]
    out += [t.wire() for t in spec.node_pool.tolerations]
    return out


SPEC_MOUNT = "/etc/synth"
"""Where a render pod finds its dataset spec (a read-only ConfigMap volume)."""
SPEC_KEY = "spec.json"
SPEC_FILE = f"{SPEC_MOUNT}/{SPEC_KEY}"


def spec_json(spec: SynthDatasetSpec) -> str:
    """The dataset spec as the renderer reads it (camelCase JSON)."""
    return json.dumps(spec.wire(), separators=(",", ":"))


def spec_configmap_name(job: str) -> str:
    """The ConfigMap holding the spec of one Job attempt (``{job}-spec``, a DNS label)."""
    return short_name(job, "-spec")


def build_spec_configmap(req: JobRequest, spec: SynthDatasetSpec, owner: Owner) -> dict[str, Any]:
    """The spec of one attempt, frozen (``immutable``), owned by the RenderBatch (issue #22 item 8).

    Render pods used to carry the whole spec in ``SYNTH_SPEC_JSON``: every pod of every Job, each
    Pod LIST of a batch tick returning it again (tens of MB per tick at 32 live batches). The Job
    now mounts one ConfigMap per attempt, created just before the Job, so a spec edit reaches the
    next attempt only, as the env did.
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": spec_configmap_name(job_name(req.batch, req.attempt)),
            "namespace": req.namespace,
            "labels": {**labels(req.dataset, req.batch), LABEL_ATTEMPT: str(req.attempt)},
            "ownerReferences": owner_references(owner),
        },
        "immutable": True,
        "data": {SPEC_KEY: spec_json(spec)},
    }


def _env(dataset_spec: SynthDatasetSpec, *, spec_file: bool = False) -> list[dict[str, Any]]:
    where = ({"name": "SYNTH_SPEC_FILE", "value": SPEC_FILE} if spec_file
             else {"name": "SYNTH_SPEC_JSON", "value": spec_json(dataset_spec)})
    env: list[dict[str, Any]] = [
        where,
        {"name": "SYNTH_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
    ]
    out = dataset_spec.output
    if out.credentials_secret:
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": out.credentials_secret, "key": key}}}
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ]
    if out.endpoint_url:
        env.append({"name": "AWS_ENDPOINT_URL", "value": out.endpoint_url})
    if out.region:
        env.append({"name": "AWS_REGION", "value": out.region})
    return env


def _resources(spec: SynthDatasetSpec) -> dict[str, Any]:
    pool = spec.node_pool
    res: dict[str, Any] = {
        "requests": {"cpu": pool.cpu, "memory": pool.memory},
        "limits": {"memory": pool.memory},
    }
    if pool.gpus_per_worker > 0:
        res["limits"][pool.gpu_resource] = str(pool.gpus_per_worker)
    return res


def pod_failure_policy() -> dict[str, Any]:
    """Disruptions and SIGTERM after a checkpoint are not failures; exit 2 fails the Job; exit 3
    (the quality gate failed the shard) fails its index at once: the same seeds would fail again."""
    return {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [EXIT_BAD_CONFIG]},
            },
            {
                "action": "FailIndex",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [EXIT_QUALITY_GATE]},
            },
            {
                "action": "Ignore",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [EXIT_SIGTERM]},
            },
        ]
    }


@dataclass(frozen=True)
class JobRequest:
    """What one attempt of a batch renders: offsets ``[shard_offset, shard_offset + completions)``."""

    dataset: str
    namespace: str
    batch: str
    batch_spec: RenderBatchSpec
    attempt: int
    shard_offset: int
    completions: int
    parallelism: int


def build_job(
    req: JobRequest, spec: SynthDatasetSpec, owner: Owner, *, settings: PodSettings
) -> dict[str, Any]:
    """The whole Job manifest of one batch attempt."""
    name = job_name(req.batch, req.attempt)
    lbl = labels(req.dataset, req.batch)
    pod_labels = {**lbl, LABEL_ATTEMPT: str(req.attempt)}
    if owner.uid:
        pod_labels[LABEL_BATCH_UID] = owner.uid  # issue #22 item 1: the batch counts its own pods only
    shard_start = req.batch_spec.shard_start + req.shard_offset
    capacity = req.batch_spec.capacity if spec.node_pool.spot else "on-demand"
    if spec.queue and spec.node_pool.spot:
        capacity = "spot"  # issue #17: under Kueue its ResourceFlavors pick spot or on-demand, not our fallback
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "serviceAccountName": settings.renderer_service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": copy.deepcopy(_POD_SECURITY),
        "containers": [
            {
                "name": CONTAINER,
                "image": spec.image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["synth-render"],
                "args": ["--dataset", req.dataset, "--shard-start", str(shard_start)],
                "env": _env(spec, spec_file=True),
                "resources": _resources(spec),
                "securityContext": copy.deepcopy(_CONTAINER_SECURITY),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                                 {"name": "spec", "mountPath": SPEC_MOUNT, "readOnly": True}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}},
                    {"name": "spec", "configMap": {"name": spec_configmap_name(name),
                                                   "items": [{"key": SPEC_KEY, "path": SPEC_KEY}]}}],
        "tolerations": tolerations(spec, capacity),
    }
    if spec.node_pool.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_pool.node_selector)
    if spec.node_pool.spot or capacity == "on-demand":
        pod_spec["affinity"] = _spot_affinity(capacity)
    pod_spec = renderpods.finish_pod(pod_spec, spec, settings)  # admin settings: scratch, pull secrets
    pod_spec = podtemplate.merge_pod_spec(pod_spec, spec.pod_template)  # issue #17: the dataset's site settings
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": req.completions,
        "parallelism": max(0, min(req.parallelism, req.completions)),
        "backoffLimitPerIndex": req.batch_spec.backoff_limit_per_index,
        "maxFailedIndexes": max_failed_indexes(req.completions),
        "podFailurePolicy": pod_failure_policy(),
        "podReplacementPolicy": "Failed",
        "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
        "template": {"metadata": podtemplate.pod_metadata(pod_labels, spec.pod_template), "spec": pod_spec},
    }
    if settings.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = settings.active_deadline_seconds
    if job_spec["parallelism"] == 0 and not spec.queue:
        job_spec["suspend"] = True  # created paused: the deadline starts when it is resumed (item 7)
    return kueue.enqueue(spec.queue, {  # issue #17: with spec.queue, created suspended for Kueue to admit
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": req.namespace,
            "labels": {**lbl, LABEL_ATTEMPT: str(req.attempt)},
            "annotations": {ANNOTATION_SHARD_OFFSET: str(req.shard_offset)},
            "ownerReferences": owner_references(owner),
        },
        "spec": job_spec,
    })


def max_failed_indexes(completions: int) -> int:
    """Stop an attempt early when over a tenth of its shards failed (something systemic)."""
    return max(1, min(completions, completions // 10 + 1))


def parallelism_patch(parallelism: int, completions: int, *, suspend: bool | None = None) -> dict[str, Any]:
    """Merge patch that changes a running Job's parallelism in place; with ``suspend``, also
    pauses or resumes it (issue #22 item 7: ``suspend: true`` stops ``activeDeadlineSeconds``
    and resets ``startTime`` on resume; ``parallelism: 0`` alone lets the deadline run out)."""
    spec: dict[str, Any] = {"parallelism": max(0, min(parallelism, completions))}
    if suspend is not None:
        spec["suspend"] = suspend
    return {"spec": spec}


# --------------------------------------------------------------------------- the index Job


def index_job_name(dataset: str) -> str:
    """The one index Job of a dataset (deterministic: a re-create answers 409); an Indexed Job
    too, so within :data:`MAX_JOB_NAME` like the render Jobs."""
    return short_name(dataset, "-index", limit=MAX_JOB_NAME)


def build_index_job(
    dataset: str, namespace: str, spec: SynthDatasetSpec, owner: Owner, *, settings: PodSettings
) -> dict[str, Any]:
    """A CPU-only Job that writes the dataset's index and dataset.json once every shard is committed.

    Same image, credentials and lockdown as the renderer pods; no GPU, no GPU tolerations.
    """
    name = index_job_name(dataset)
    lbl = labels(dataset, name)
    container = {
        "name": "index",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["synthctl"],
        "args": ["index", "--dataset", dataset],
        "env": _env(spec),
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
        "securityContext": copy.deepcopy(_CONTAINER_SECURITY),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": settings.renderer_service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": copy.deepcopy(_POD_SECURITY),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    pod_spec = renderpods.finish_pod(pod_spec, spec, settings, scratch=False)
    pod_spec = podtemplate.merge_pod_spec(pod_spec, spec.pod_template, placement=False)  # issue #17
    return kueue.enqueue(spec.queue, {  # issue #17: the index Job waits in the same queue
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": lbl,
            "ownerReferences": owner_references(owner),
        },
        "spec": {
            # Indexed with one completion: same controller semantics as the render Jobs.
            "completionMode": "Indexed",
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 3,
            "podFailurePolicy": {
                "rules": [
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                    {"action": "FailJob", "onExitCodes": {"containerName": "index", "operator": "In",
                                                         "values": [EXIT_BAD_CONFIG]}},
                ]
            },
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "template": {"metadata": podtemplate.pod_metadata(lbl, spec.pod_template), "spec": pod_spec},
        },
    }, partial=False)
