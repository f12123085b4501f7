"""kopf glue: timers and change handlers that call ``reconcile.py``. No decisions here.

* A timer per SynthDataset folds finished batches, opens new ones and writes the status.
* A timer per RenderBatch turns its Job and Pods into batch status and starts/retries attempts.
* An index of SynthDatasets gives batch timers their dataset without an API call.
* Change handlers only post the ``SpecInvalid`` Warning Event once per spec change.

Settings are read once at import (``SYNTH_OPERATOR_*`` variables), as timer intervals are
fixed when the handlers are registered.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from parallel_synth import events as ev
from parallel_synth import kube as kube_mod
from parallel_synth import reconcile
from parallel_synth.api import GROUP, VERSION
from parallel_synth.settings import OperatorSettings

SETTINGS = OperatorSettings.from_env()
DATASETS = (GROUP, VERSION, "synthdatasets")
BATCHES = (GROUP, VERSION, "renderbatches")


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.posting.level = logging.WARNING  # kopf's own events: only problems
    settings.watching.server_timeout = 300
    settings.peering.name = "parallel-synth"
    memo.kube = kube_mod.connect(settings)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    kube = memo.get("kube")
    if kube is not None:
        await kube.close()


@kopf.index(*DATASETS)
def dataset_bodies(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str | None, str], Any]:
    return {(namespace, name): dict(body)}


@kopf.on.create(*DATASETS)
@kopf.on.update(*DATASETS, field="spec")
async def spec_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    spec, errors = reconcile.validated_spec(dict(body))
    if spec is None:
        await reconcile.post_events(memo.kube, dict(body), [ev.spec_invalid(errors)], now=datetime.now(UTC))


@kopf.timer(*DATASETS, interval=SETTINGS.dataset_interval, initial_delay=SETTINGS.initial_delay)
async def dataset_timer(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await reconcile.reconcile_dataset(memo.kube, dict(body), settings=SETTINGS)


@kopf.timer(*BATCHES, interval=SETTINGS.batch_interval, initial_delay=SETTINGS.initial_delay)
async def batch_timer(
    body: kopf.Body, namespace: str | None, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any
) -> None:
    index: kopf.Index[Any, Any] = kwargs["dataset_bodies"]
    found = list(index.get((namespace, spec.get("dataset")), []))
    dataset = found[0] if found else await memo.kube.get(kube_mod.DATASETS, str(namespace), str(spec.get("dataset")))
    await reconcile.reconcile_batch(memo.kube, dict(body), dataset, settings=SETTINGS)
