"""Settings: one frozen dataclass per concern, all read from the environment here, once.

:class:`Settings` bundles them; ``Settings.from_env()`` is called once at start-up
(``cluster/handlers.py``) and the result is passed down explicitly: no module reads the
environment for its tunables. Every field has a default and a docstring.

Environment (documented in docs/CONTRACTS.md, "Settings"):

* ``SYNTH_OPERATOR_<FIELD>``: a field of :class:`OperatorSettings`, :class:`PodSettings` or
  :class:`PolicySettings` (upper-case field name; the names are unique across the three);
* ``SYNTH_SCALING_<FIELD>``: a field of :class:`ScalingSettings`; ``tick_seconds`` defaults to
  the dataset interval (the autoscaler ticks with the dataset reconcile).

Tuples are comma-separated names; booleans ``1/true/yes/on``; ``none`` clears an optional int.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar


@dataclass(frozen=True)
class OperatorSettings:
    """Tunables of the reconcile loop: intervals, the window, retries, bounds of the status."""

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
    max_remembered_pods: int = 200
    """Pods remembered per batch so preemptions and GPU time are counted once (bounded)."""
    max_status_ranges: int = 200
    """Spans kept in a failed-shards text before it is summarised (keeps status small)."""
    cluster_scanning: bool = True
    """Let kopf list namespaces and watch CRDs; turn off where RBAC or the API server forbids it."""
    unauthorized_limit: int = 3
    """Consecutive HTTP 401 answers (each after a fresh login) before /healthz fails and the pod restarts."""


@dataclass(frozen=True)
class PodSettings:
    """What the cluster admin sets on the pods the operator creates (rendering and index Jobs)."""

    termination_grace_seconds: int = 120
    """Pod termination grace period: time for the renderer to checkpoint on SIGTERM."""
    active_deadline_seconds: int | None = None
    """Optional Job activeDeadlineSeconds (None: no deadline)."""
    ttl_seconds_after_finished: int = 3600
    """Job ttlSecondsAfterFinished: a safety net if the operator is gone when a Job ends."""
    renderer_service_account: str = "parallel-synth-renderer"
    """ServiceAccount of rendering pods (created by the installs; no RBAC, token not mounted)."""
    renderer_image_pull_secrets: tuple[str, ...] = ()
    """imagePullSecrets of rendering and index pods (comma-separated names in the variable)."""
    file_output_claim: str = ""
    """A ReadWriteMany PVC mounted into rendering pods at ``file_output_path``; without it
    ``file://`` outputs are refused on a cluster (they would land in a pod's emptyDir and vanish)."""
    file_output_path: str = "/data"
    """Where ``file_output_claim`` is mounted; ``file://`` URIs must lie below it."""
    scratch_overhead_bytes: int = 2 * 1024**3
    """Scratch space of a rendering pod beyond one shard's bytes (Blender caches, the tar being built)."""


@dataclass(frozen=True)
class PolicySettings:
    """The cluster admin's policy over SynthDatasets (``cluster/admission.py``)."""

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
    allow_captioner_modules: bool = False
    """Let ``spec.render.captioner`` name a ``module:function``, which imports that module in rendering pods
    (off: only builtin, none and entry points registered in group parallel_synth.captioners)."""


@dataclass(frozen=True)
class ScalingSettings:
    """Tunables of the autoscaler (defaults suit shards of minutes to hours)."""

    tick_seconds: float = 60.0
    """Interval of the autoscaler timer (the dataset interval); pods younger than this are not
    protected on scale-down."""
    min_change_interval_seconds: float = 300.0
    """Shortest time between two changes of the desired worker count."""
    scale_down_stabilization_seconds: float = 1800.0
    """Scale-down goes only to the highest recommendation within this look-back."""
    tolerance: float = 0.1
    """Relative dead band for scale-down: smaller reductions are ignored."""
    preemption_window_seconds: float = 3600.0
    """Look-back over which the spot preemption rate is measured."""
    fallback_preemptions_per_pod_hour: float = 0.15
    """Spot preemptions per spot pod per hour above which new pods go on-demand."""
    fallback_min_preemptions: int = 3
    """Fewest preemptions in the window before falling back (one unlucky pod is not a storm)."""
    spot_retry_seconds: float = 6 * 3600.0
    """Time on on-demand after a fallback before spot is tried again."""
    max_recommendations: int = 256
    """Bound on the remembered recommendations and preemption marks (memory)."""


def _scaling_default() -> ScalingSettings:
    return ScalingSettings(tick_seconds=OperatorSettings().dataset_interval)


@dataclass(frozen=True)
class Settings:
    """Every concern's settings, built once at start-up and passed down.

    The autoscaler ticks with the dataset reconcile: ``scaling.tick_seconds`` is the dataset
    interval unless set (a caller that sets ``operator.dataset_interval`` sets it too).
    """

    operator: OperatorSettings = field(default_factory=OperatorSettings)
    pods: PodSettings = field(default_factory=PodSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    scaling: ScalingSettings = field(default_factory=_scaling_default)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every concern from the environment (the one place that reads it)."""
        env = os.environ if env is None else env
        operator = _from_env(OperatorSettings, "SYNTH_OPERATOR_", env)
        scaling = _from_env(ScalingSettings, "SYNTH_SCALING_", env)
        if "SYNTH_SCALING_TICK_SECONDS" not in env:
            scaling = dataclasses.replace(scaling, tick_seconds=operator.dataset_interval)
        return cls(operator=operator, pods=_from_env(PodSettings, "SYNTH_OPERATOR_", env),
                   policy=_from_env(PolicySettings, "SYNTH_OPERATOR_", env), scaling=scaling)


_T = TypeVar("_T")


def _from_env(kind: type[_T], prefix: str, env: Mapping[str, str]) -> _T:
    """Defaults of the dataclass ``kind``, overridden by ``<prefix><FIELD>`` variables."""
    values: dict[str, object] = {}
    for f in dataclasses.fields(kind):  # type: ignore[arg-type]
        raw = env.get(f"{prefix}{f.name.upper()}")
        if raw is None:
            continue
        typ = str(f.type)
        if typ == "str":
            values[f.name] = raw
        elif typ.startswith("tuple"):
            values[f.name] = tuple(x.strip() for x in raw.split(",") if x.strip())
        elif typ == "bool":
            values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
        elif "int" in typ and "None" in typ:
            values[f.name] = None if raw.lower() in ("", "none") else int(raw)
        elif "float" in typ:
            values[f.name] = float(raw)
        else:
            values[f.name] = int(raw)
    return kind(**values)
