"""kopf glue: timers and change handlers that call ``reconcile.py``. No decisions here.

* A timer per SynthDataset folds finished batches, opens new ones and writes the status.
* A timer per RenderBatch turns its Job and Pods into batch status and starts/retries attempts.
* An index of SynthDatasets gives batch timers their dataset without an API call.
* A watch of the operator's pods remembers pods disrupted or deleted between two batch ticks
  (``pods.py``); the next tick of their batch counts them.
* Events are decided with the status (posted once per transition), not by change handlers.
* With ``synthctl operator --metrics-port``, ``memo.metrics`` (:class:`parallel_synth.cluster.metrics.Metrics`)
  times each reconcile and exposes each dataset's status as Prometheus metrics.

Settings are read once at import (``Settings.from_env()``: ``SYNTH_OPERATOR_*`` and
``SYNTH_SCALING_*`` variables), as timer intervals are fixed when the handlers are registered.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from parallel_synth.cluster import kube as kube_mod
from parallel_synth.cluster import pods, reconcile
from parallel_synth.cluster.metrics import Metrics
from parallel_synth.settings import Settings
from synth_contract.api import GROUP, LABEL_BATCH, LABEL_MANAGED_BY, MANAGED_BY

SETTINGS = Settings.from_env()
OPERATOR = SETTINGS.operator
DATASETS = (kube_mod.DATASETS.group, kube_mod.DATASETS.version, kube_mod.DATASETS.plural)
BATCHES = (kube_mod.BATCHES.group, kube_mod.BATCHES.version, kube_mod.BATCHES.plural)
PODS = (kube_mod.PODS.version, kube_mod.PODS.plural)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.posting.level = logging.WARNING  # kopf's own events: only problems
    settings.watching.server_timeout = 300
    settings.scanning.disabled = not OPERATOR.cluster_scanning
    # Timers stop within one tick; re-check soon so finalizers of deleted objects go quickly.
    settings.background.instant_exit_timeout = min(OPERATOR.batch_interval, OPERATOR.dataset_interval) + 1.0
    settings.background.cancellation_polling = 2.0
    settings.watching.label_selectors[PODS] = pods.LABEL_SELECTOR  # our pods only, filtered by the server
    memo.kube = kube_mod.connect(settings)
    memo.pods = pods.PodMemory()
    memo.specs = reconcile.SpecCache()  # batch ticks validate their dataset once per generation


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    info: kopf.ConnectionInfo = kube_mod.login(settings=settings)
    return info


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    kube = memo.get("kube")
    if kube is not None:
        await kube.close()


@kopf.on.probe(id="apiRequests")
def api_requests(memo: kopf.Memo, **_: Any) -> int:
    """Liveness/health payload: API requests made by the operator core so far.

    Fails (so /healthz answers 500 and the kubelet restarts the pod) once the API refused our
    credentials ``OPERATOR.unauthorized_limit`` times in a row, each time after a fresh login.
    """
    kube = memo.get("kube")
    if kube is not None and kube.unauthorized >= OPERATOR.unauthorized_limit:
        raise kopf.PermanentError(f"{kube.unauthorized} API requests in a row refused with 401 Unauthorized "
                                  "after a fresh login: the operator's credentials are not accepted")
    return sum(kube.calls.values()) if kube is not None else 0


@kopf.index(*DATASETS)
def dataset_bodies(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str | None, str], Any]:
    return {(namespace, name): dict(body)}


@kopf.timer(*DATASETS, interval=OPERATOR.dataset_interval, initial_delay=OPERATOR.initial_delay)
async def dataset_timer(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    metrics: Metrics | None = memo.get("metrics")
    if metrics is None:
        await reconcile.reconcile_dataset(memo.kube, dict(body), settings=SETTINGS)
        return
    with metrics.time_reconcile("dataset"):
        decision = await reconcile.reconcile_dataset(memo.kube, dict(body), settings=SETTINGS)
    meta = body.get("metadata") or {}
    status = decision.status.wire() if decision is not None else dict(body.get("status") or {})
    metrics.update_from_status(str(meta.get("namespace")), str(meta.get("name")), dict(body.get("spec") or {}),
                               status, now=datetime.now(UTC))


@kopf.on.delete(*DATASETS, optional=True)
def dataset_deleted(namespace: str | None, name: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A deleted dataset leaves /metrics at once (its batches and Jobs go by garbage collection)."""
    metrics: Metrics | None = memo.get("metrics")
    if metrics is not None:
        metrics.forget(str(namespace), str(name))


@kopf.on.event(*PODS, labels={LABEL_MANAGED_BY: MANAGED_BY, LABEL_BATCH: kopf.PRESENT})
def pod_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Remember pods disrupted or deleted, which may be gone before the batch timer lists them."""
    memo.pods.record(event.get("type"), dict(body), now=datetime.now(UTC).timestamp())


@kopf.timer(*BATCHES, interval=OPERATOR.batch_interval, initial_delay=OPERATOR.initial_delay)
async def batch_timer(
    body: kopf.Body, namespace: str | None, name: str | None, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any
) -> None:
    index: kopf.Index[Any, Any] = kwargs["dataset_bodies"]
    found = list(index.get((namespace, spec.get("dataset")), []))
    dataset = found[0] if found else await memo.kube.get(kube_mod.DATASETS, str(namespace), str(spec.get("dataset")))
    metrics: Metrics | None = memo.get("metrics")
    taken = memo.pods.take(str(namespace), str(name))
    with metrics.time_reconcile("batch") if metrics is not None else contextlib.nullcontext():
        await reconcile.reconcile_batch(memo.kube, dict(body), dataset, settings=SETTINGS, gone_pods=taken.pods,
                                        specs=memo.get("specs"))
    memo.pods.forget(taken)  # written into the batch status (a failed tick keeps them for the next)
