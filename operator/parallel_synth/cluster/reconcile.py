"""Apply the decisions of ``batches.py`` through the adapter of ``kube.py``.

One function per kind, called by the kopf timers in ``handlers.py`` (and directly by the
benchmark): observe (one list or two gets), decide (pure), then write in a safe order: status
first (so a crash never loses what was observed), then create/patch/delete children (all
idempotent: deterministic names, 409 and 404 are success). Status is written only when it
changed, so API calls grow with live batches and time, not with shards.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from parallel_synth.cluster import events as ev
from parallel_synth.cluster.admission import policy_errors
from parallel_synth.cluster.asset_policy import asset_uri_errors
from parallel_synth.cluster.kube import BATCHES, DATASETS, EVENTS, JOBS, PODS, Kube
from parallel_synth.decisions.batch import (
    LABEL_INDEX,
    BatchDecision,
    DatasetDecision,
    EventSpec,
    decide_batch,
    decide_dataset,
    invalid_status,
)
from parallel_synth.decisions.finalize import finalize, needs_index
from parallel_synth.decisions.jobs import (
    LABEL_ATTEMPT,
    Owner,
    build_index_job,
    build_job,
    index_job_name,
    job_name,
    job_progress,
    labels,
    owner_references,
    parallelism_patch,
)
from parallel_synth.decisions.status import parse_time, pod_node
from parallel_synth.settings import OperatorSettings
from synth_contract.api import (
    API_VERSION,
    LABEL_BATCH,
    LABEL_DATASET,
    RenderBatchSpec,
    SynthDatasetSpec,
)
from synth_contract.validation import validate_document

logger = logging.getLogger(__name__)

VOLATILE = frozenset({"gpuSeconds", "spotGpuSeconds", "gpuSecondsFinished", "spotGpuSecondsFinished",
                      "cost", "eta", "samplesPerDay"})  # issue #6: refreshed at least with status.autoscaler
"""Status fields that change on every tick while pods run: written along with real changes only."""


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """Merge patch from ``old`` to ``new`` status (removed keys set to None); None if unchanged."""
    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k not in VOLATILE}

    if strip(old) == strip(new):
        return None
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch


def _condition(status: dict[str, Any], kind: str) -> tuple[str, str] | None:
    for c in status.get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status")), str(c.get("message"))
    return None


def validated_spec(
    body: dict[str, Any], *, settings: OperatorSettings | None = None
) -> tuple[SynthDatasetSpec | None, list[str]]:
    """Validate a dataset's spec; time-dependent checks use its creation time (stable verdict).

    With ``settings``, the cluster admin's policy too (``admission.py``: file:// outputs, image
    allow-list, node selectors, tolerations, credentials Secrets).
    """
    created = parse_time((body.get("metadata") or {}).get("creationTimestamp")) or datetime.now(UTC)
    # The whole object, as `synthctl validate-manifest` checks it: metadata.name becomes a label
    # value and the prefix of batch and Job names, so it must be a DNS label too.
    obj, errors = validate_document(body, now=created)
    if obj is not None and settings is not None:
        errors = policy_errors(obj.spec, settings) + asset_uri_errors(obj.spec, settings)
        if errors:
            obj = None
    return (obj.spec if obj is not None else None), [str(e) for e in errors]


async def post_events(kube: Kube, involved: dict[str, Any], items: list[EventSpec], *, now: datetime) -> None:
    for item in items:
        try:
            await kube.create(EVENTS, involved["metadata"]["namespace"], ev.event_body(involved, item, now=now))
        except Exception as exc:  # an Event is never worth failing a reconciliation
            logger.warning("could not post event %s: %s", item.reason, exc)


def batch_body(dataset: dict[str, Any], name: str, index: int, spec: RenderBatchSpec) -> dict[str, Any]:
    meta = dataset["metadata"]
    owner = Owner(kind="SynthDataset", name=meta["name"], uid=meta.get("uid"))
    return {
        "apiVersion": API_VERSION,
        "kind": "RenderBatch",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {**labels(meta["name"], name), LABEL_INDEX: str(index)},
            "ownerReferences": owner_references(owner),
        },
        "spec": spec.wire(),
    }


async def reconcile_dataset(
    kube: Kube, body: dict[str, Any], *, settings: OperatorSettings, now: datetime | None = None
) -> DatasetDecision | None:
    """One reconciliation of a SynthDataset. Returns the decision applied (None if invalid)."""
    now = now or datetime.now(UTC)
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    old = dict(body.get("status") or {})
    generation = int(meta.get("generation") or 0)
    spec, errors = validated_spec(body, settings=settings)
    if spec is None:
        new = invalid_status(old, errors, generation=generation, now=now)
        patch = status_patch(old, new)
        if patch:
            await kube.patch(DATASETS, ns, name, {"status": patch}, status=True)
        if _condition(old, "SpecValid") != _condition(new, "SpecValid"):  # once per new verdict
            await post_events(kube, body, [ev.spec_invalid(errors)], now=now)
        return None
    if old.get("phase") == "Succeeded" and int(old.get("observedGeneration") or -1) == generation:
        return None  # finished and unchanged since: no API calls while it stays so
    batches = await kube.list(BATCHES, ns, labels={LABEL_DATASET: name})
    decision = decide_dataset(name=name, spec=spec, status=old, batches=batches, generation=generation,
                              now=now, settings=settings)
    if needs_index(decision.status):  # every shard committed: the index Job finishes the dataset
        iname = index_job_name(name)
        ijob = await kube.get(JOBS, ns, iname)
        fin = finalize(decision.status, decision.events, job=iname,
                       job_state=job_progress(ijob).finished if ijob is not None else None,
                       job_exists=ijob is not None, now=now)
        if fin.create_job:
            owner = Owner(kind="SynthDataset", name=name, uid=meta.get("uid"))
            await kube.create(JOBS, ns, build_index_job(name, ns, spec, owner, settings=settings))
        decision = dataclasses.replace(decision, status=fin.status, events=fin.events)
    for nb in decision.create:
        await kube.create(BATCHES, ns, batch_body(body, nb.name, nb.index, nb.spec))
    for bname, par in decision.set_parallelism.items():
        await kube.patch(BATCHES, ns, bname, {"spec": {"parallelism": par}})
    patch = status_patch(old, decision.status)
    if patch:
        await kube.patch(DATASETS, ns, name, {"status": patch}, status=True)
    for bname in decision.delete:  # only after the fold is recorded in the dataset's status
        await kube.delete(BATCHES, ns, bname)
    await post_events(kube, body, decision.events, now=now)
    return decision


async def reconcile_batch(
    kube: Kube,
    body: dict[str, Any],
    dataset: dict[str, Any] | None,
    *,
    settings: OperatorSettings,
    now: datetime | None = None,
    gone_pods: Sequence[dict[str, Any]] = (),
) -> BatchDecision | None:
    """One reconciliation of a RenderBatch; ``dataset`` is its owner's body (None: gone).

    ``gone_pods``: what the pod watch remembered of this batch's pods (``podwatch.PodMemory``).
    """
    now = now or datetime.now(UTC)
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    if dataset is None:
        return None  # the owner is gone: garbage collection removes us and our Jobs
    dspec, _ = validated_spec(dataset, settings=settings)
    if dspec is None:
        return None
    spec = RenderBatchSpec.model_validate(body.get("spec") or {})
    old = dict(body.get("status") or {})
    if old.get("phase") in ("Succeeded", "Failed"):
        return None  # final: the dataset folds and deletes it
    attempt = int(old.get("attempt") or 0)
    job = pods = None
    if attempt > 0:
        job = await kube.get(JOBS, ns, job_name(name, attempt))
        if job is not None:
            pods = await kube.list(PODS, ns, labels={LABEL_BATCH: name})
    nodes = {pod_node(p) for p in pods or []} - {""}
    node_labels = {n: lbl for n in sorted(nodes) if (lbl := await kube.node_labels(n)) is not None}
    decision = decide_batch(
        dataset=spec.dataset, namespace=ns, name=name, spec=spec, status=old, dataset_spec=dspec, job=job,
        pods=pods or [], generation=int(meta.get("generation") or 0), now=now, settings=settings,
        node_labels=node_labels, gone_pods=gone_pods)
    patch = status_patch(old, decision.status)
    if patch:
        await kube.patch(BATCHES, ns, name, {"status": patch}, status=True)
    posted = list(decision.events)
    if decision.create_job is not None:
        owner = Owner(kind="RenderBatch", name=name, uid=meta.get("uid"))
        created = await kube.create(JOBS, ns, build_job(decision.create_job, dspec, owner, settings=settings))
        if not created:
            posted = [e for e in posted if e.reason != "BatchStarted"]
    if decision.patch_parallelism is not None and job is not None:
        completions = int((job.get("spec") or {}).get("completions") or spec.shard_count)
        await kube.patch(JOBS, ns, job["metadata"]["name"], parallelism_patch(decision.patch_parallelism, completions))
    for jname in decision.delete_jobs:
        await kube.delete(JOBS, ns, jname)
    await post_events(kube, body, posted, now=now)
    return decision


__all__ = ["LABEL_ATTEMPT", "reconcile_batch", "reconcile_dataset", "status_patch", "validated_spec"]
