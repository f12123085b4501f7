"""Operator settings: one typed, immutable object built once at start-up and passed explicitly.

Every field has a default; ``from_env`` reads overrides from ``SYNTH_OPERATOR_<FIELD>``
environment variables (upper-case field name), so the Deployment and the tests can tune
intervals without code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorSettings:
    """Tunables of the operator core."""

    dataset_interval: float = 15.0
    """Seconds between two reconciliations of a SynthDataset (window, folding, status)."""
    batch_interval: float = 10.0
    """Seconds between two reconciliations of a RenderBatch (Job and Pod state to status)."""
    initial_delay: float = 0.5
    """Seconds before the first timer tick of a newly seen object."""
    max_live_batches: int = 32
    """Upper bound on live RenderBatches per dataset (the workers' maximum bounds it too)."""
    retry_backoff_seconds: float = 30.0
    """Delay before the second Job attempt of a batch; doubles per further attempt."""
    retry_backoff_max_seconds: float = 900.0
    """Cap of the retry backoff."""
    termination_grace_seconds: int = 120
    """Pod termination grace period: time for the renderer to checkpoint on SIGTERM."""
    active_deadline_seconds: int | None = None
    """Optional Job activeDeadlineSeconds (None: no deadline)."""
    ttl_seconds_after_finished: int = 3600
    """Job ttlSecondsAfterFinished: a safety net if the operator is gone when a Job ends."""
    max_remembered_pods: int = 200
    """Pods remembered per batch so preemptions and GPU time are counted once (bounded)."""
    max_status_ranges: int = 200
    """Spans kept in a failed-shards text before it is summarised (keeps status small)."""
    max_condition_message: int = 1024
    """Longest condition message written to status."""
    renderer_service_account: str = "parallel-synth-renderer"
    """ServiceAccount of rendering pods (created by the installs; no RBAC, token not mounted)."""
    cluster_scanning: bool = True
    """Let kopf list namespaces and watch CRDs; turn off where RBAC or the API server forbids it."""
    renderer_image_pull_secrets: tuple[str, ...] = ()
    """imagePullSecrets of rendering and index pods (comma-separated names in the variable)."""
    file_output_claim: str = ""
    """A ReadWriteMany PVC mounted into rendering pods at ``file_output_path``; without it
    ``file://`` outputs are refused on a cluster (they would land in a pod's emptyDir and vanish)."""
    file_output_path: str = "/data"
    """Where ``file_output_claim`` is mounted; ``file://`` URIs must lie below it."""
    allowed_image_prefixes: tuple[str, ...] = ()
    """Registry/repository prefixes ``spec.image`` must start with (empty: any image)."""
    require_image_digest: bool = False
    """Refuse ``spec.image`` without an ``@sha256:`` digest (pinned renderer images only)."""
    allowed_node_selector_keys: tuple[str, ...] = ()
    """Node label keys ``spec.nodePool.nodeSelector`` may use (empty: any key)."""
    allowed_toleration_keys: tuple[str, ...] = ()
    """Taint keys ``spec.nodePool.tolerations`` may tolerate (empty: any key but the control plane's;
    a toleration without a key, which tolerates every taint, is always refused)."""
    allowed_credentials_secrets: tuple[str, ...] = ()
    """Secret names ``spec.output.credentialsSecret`` may name (empty: any Secret of the dataset's namespace)."""
    unauthorized_limit: int = 3
    """Consecutive HTTP 401 answers (each after a fresh login) before /healthz fails and the pod restarts."""
    scratch_overhead_bytes: int = 2 * 1024**3
    """Scratch space of a rendering pod beyond one shard's bytes (Blender caches, the tar being built)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        """Defaults, overridden by ``SYNTH_OPERATOR_<FIELD>`` variables."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"SYNTH_OPERATOR_{f.name.upper()}")
            if raw is None:
                continue
            kind = str(f.type)
            if kind == "str":
                values[f.name] = raw
            elif kind.startswith("tuple"):
                values[f.name] = tuple(x.strip() for x in raw.split(",") if x.strip())
            elif kind == "bool":
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif "int" in kind and "None" in kind:
                values[f.name] = None if raw.lower() in ("", "none") else int(raw)
            elif "float" in kind:
                values[f.name] = float(raw)
            else:
                values[f.name] = int(raw)
        return cls(**values)  # type: ignore[arg-type]
