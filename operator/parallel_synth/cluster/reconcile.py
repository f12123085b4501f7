"""Observe, decide, apply: one reconcile of a SynthDataset or a RenderBatch.

Called by the kopf timers in ``handlers.py`` (and directly by the benchmark). Observe: the
object's body, then what the decision needs, parsed once into typed facts
(:mod:`parallel_synth.decisions.facts`): a dataset's RenderBatches and, when it can matter,
its index Job first; a batch's current Job, its Pods and their nodes' labels. Decide: one pure
call (:func:`~parallel_synth.decisions.dataset.decide_dataset`,
:func:`~parallel_synth.decisions.batch.decide_batch`). Apply: :func:`apply` performs the
decision's effects in the order the decision gave (status before anything is deleted, so a
crash never loses what was observed; every write idempotent: deterministic names, 409 and 404
are success). Status is written only when it changed, so API calls grow with live batches and
time, not with shards.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from parallel_synth.cluster.admission import asset_uri_errors, policy_errors
from parallel_synth.cluster.events import event_body
from parallel_synth.cluster.kube import (
    BATCHES,
    CONFIGMAPS,
    DATASETS,
    EVENTS,
    JOBS,
    PODS,
    Conflict,
    Kube,
    Resource,
)
from parallel_synth.cluster.observe import controller_uid, job_facts, observed_batch, pod_facts
from parallel_synth.decisions.batch import BatchDecision, decide_batch
from parallel_synth.decisions.dataset import DatasetDecision, decide_dataset, decide_invalid, needs_index_job
from parallel_synth.decisions.effects import (
    CreateBatch,
    CreateIndexJob,
    CreateJob,
    DeleteBatch,
    DeleteJob,
    Effect,
    Event,
    PatchStatus,
    PostEvent,
    ScaleBatch,
    ScaleJob,
)
from parallel_synth.decisions.facts import LABEL_INDEX, PodFacts, owned_by
from parallel_synth.decisions.jobs import (
    Owner,
    build_index_job,
    build_job,
    build_spec_configmap,
    index_job_name,
    job_name,
    labels,
    owner_references,
    parallelism_patch,
)
from parallel_synth.settings import Settings
from synth_contract.api import (
    API_VERSION,
    LABEL_BATCH,
    LABEL_DATASET,
    BatchPhase,
    DatasetPhase,
    RenderBatchSpec,
    RenderBatchStatus,
    SynthDatasetSpec,
    SynthDatasetStatus,
)
from synth_contract.times import parse_time
from synth_contract.validation import validate_document

logger = logging.getLogger(__name__)


def validated_spec(
    body: dict[str, Any], *, settings: Settings | None = None
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


class SpecCache:
    """Verdicts of :func:`validated_spec` per (dataset uid, generation), bounded (issue #24).

    Every batch tick needs its dataset's validated spec; validating it again each time (the
    whole document, the admin's policy) costs more than the rest of the tick. A dataset's
    verdict changes only with its spec (a new ``generation``) or a new object (a new uid); the
    policy is fixed for the process. Bodies without a uid are validated every time.
    """

    def __init__(self, *, limit: int = 1024) -> None:
        self.limit = limit
        self.misses = 0
        self._verdicts: collections.OrderedDict[tuple[str, int], tuple[SynthDatasetSpec | None, list[str]]] = (
            collections.OrderedDict())

    def validated(self, body: dict[str, Any], *, settings: Settings) -> tuple[SynthDatasetSpec | None, list[str]]:
        meta = body.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            self.misses += 1
            return validated_spec(body, settings=settings)
        key = (str(uid), int(meta.get("generation") or 0))
        found = self._verdicts.get(key)
        if found is not None:
            self._verdicts.move_to_end(key)
            return found
        self.misses += 1
        found = self._verdicts[key] = validated_spec(body, settings=settings)
        while len(self._verdicts) > self.limit:
            self._verdicts.popitem(last=False)
        return found


def batch_body(dataset: dict[str, Any], create: CreateBatch) -> dict[str, Any]:
    """The RenderBatch object of a :class:`CreateBatch` effect, owned by its dataset."""
    meta = dataset["metadata"]
    owner = Owner(kind="SynthDataset", name=meta["name"], uid=meta.get("uid"))
    return {
        "apiVersion": API_VERSION,
        "kind": "RenderBatch",
        "metadata": {
            "name": create.name,
            "namespace": meta["namespace"],
            "labels": {**labels(meta["name"], create.name), LABEL_INDEX: str(create.index)},
            "ownerReferences": owner_references(owner),
        },
        "spec": create.spec.wire(),
    }


@dataclass(frozen=True)
class Target:
    """The reconciled object and what building its children needs."""

    kind: Resource
    body: dict[str, Any]
    dataset_spec: SynthDatasetSpec | None = None
    dataset: dict[str, Any] | None = None
    """The owning dataset's body (for a RenderBatch's Jobs; the dataset itself for its batches)."""


async def apply(kube: Kube, target: Target, effects: Sequence[Effect], *, settings: Settings, now: datetime) -> None:
    """Perform a decision's effects, in order. Events are never worth failing a reconcile."""
    meta = target.body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    owner = Owner(kind=target.body.get("kind") or ("SynthDataset" if target.kind is DATASETS else "RenderBatch"),
                  name=name, uid=meta.get("uid"))
    for effect in effects:
        if isinstance(effect, PatchStatus):  # on the observed version only (Conflict: decide again)
            await kube.patch(target.kind, ns, name, {"status": effect.patch}, status=True,
                             resource_version=meta.get("resourceVersion"))
        elif isinstance(effect, CreateBatch):
            await kube.create(BATCHES, ns, batch_body(target.body, effect))
        elif isinstance(effect, ScaleBatch):
            await kube.patch(BATCHES, ns, effect.name, {"spec": {"parallelism": effect.parallelism}})
        elif isinstance(effect, DeleteBatch):
            await kube.delete(BATCHES, ns, effect.name)
        elif isinstance(effect, CreateJob):
            assert target.dataset_spec is not None
            if not await _create_spec(kube, ns, build_spec_configmap(effect.request, target.dataset_spec, owner)):
                continue  # a predecessor's ConfigMap of the same name: its Job would read the wrong spec
            job = build_job(effect.request, target.dataset_spec, owner, settings=settings.pods)
            if await kube.create(JOBS, ns, job) and effect.announce is not None:
                await _post(kube, target.body, effect.announce, now=now)
        elif isinstance(effect, CreateIndexJob):
            assert target.dataset_spec is not None
            job = build_index_job(name, ns, target.dataset_spec, owner, settings=settings.pods)
            if await kube.create(JOBS, ns, job) and effect.announce is not None:
                await _post(kube, target.body, effect.announce, now=now)
        elif isinstance(effect, ScaleJob):
            await kube.patch(JOBS, ns, effect.name, parallelism_patch(effect.parallelism, effect.completions,
                                                                    suspend=effect.suspend))
        elif isinstance(effect, DeleteJob):
            await kube.delete(JOBS, ns, effect.name)
        elif isinstance(effect, PostEvent):
            await _post(kube, target.body, effect.event, now=now)


async def _create_spec(kube: Kube, namespace: str, configmap: dict[str, Any]) -> bool:
    """Create a Job attempt's spec ConfigMap; True when the one there (new, or 409) is ours."""
    if await kube.create(CONFIGMAPS, namespace, configmap):
        return True
    found = await kube.get(CONFIGMAPS, namespace, configmap["metadata"]["name"])
    ours = [r.get("uid") for r in configmap["metadata"].get("ownerReferences") or []]
    theirs = [r.get("uid") for r in ((found or {}).get("metadata") or {}).get("ownerReferences") or []]
    if found is not None and theirs == ours:
        return True
    logger.warning("ConfigMap %s belongs to another object (a predecessor of this name being garbage-collected); "
                   "its Job waits for the next tick", configmap["metadata"]["name"])
    return False


async def _post(kube: Kube, involved: dict[str, Any], event: Event, *, now: datetime) -> None:
    try:
        await kube.create(EVENTS, involved["metadata"]["namespace"], event_body(involved, event, now=now))
    except Exception as exc:  # an Event is never worth failing a reconciliation
        logger.warning("could not post event %s: %s", event.reason, exc)


CONFLICT_RETRIES = 3
"""Re-reads after a 409 on the status patch before the reconcile fails (kopf retries it later)."""


async def reconcile_dataset(
    kube: Kube, body: dict[str, Any], *, settings: Settings, now: datetime | None = None
) -> DatasetDecision | None:
    """One reconciliation of a SynthDataset. Returns the decision applied (None: invalid, or nothing to do).

    The decision's first write is its status patch on the body's ``resourceVersion``; when the
    object changed since (409), it is read again and the decision made again on what is there.
    """
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            return await _reconcile_dataset(kube, body, settings=settings, now=now)
        except Conflict:
            if attempt == CONFLICT_RETRIES:
                raise
            meta = body["metadata"]
            fresh = await kube.get(DATASETS, meta["namespace"], meta["name"])
            if fresh is None:
                return None
            logger.debug("dataset %s changed since it was read: deciding again", meta["name"])
            body = fresh
    raise AssertionError("unreachable")


async def _reconcile_dataset(
    kube: Kube, body: dict[str, Any], *, settings: Settings, now: datetime | None = None
) -> DatasetDecision | None:
    now = now or datetime.now(UTC)
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    old = SynthDatasetStatus.model_validate(body.get("status") or {})
    generation = int(meta.get("generation") or 0)
    spec, errors = validated_spec(body, settings=settings)
    if spec is None:
        invalid = decide_invalid(old, errors, generation=generation, now=now)
        await apply(kube, Target(DATASETS, body), invalid.effects, settings=settings, now=now)
        return None
    if old.phase == DatasetPhase.SUCCEEDED and old.observed_generation == generation:
        return None  # finished and unchanged since: no API calls while it stays so
    batches = [observed_batch(b) for b in await kube.list(BATCHES, ns, labels={LABEL_DATASET: name})]
    index_job = None
    if needs_index_job(spec, old, batches):
        found = await kube.get(JOBS, ns, index_job_name(name))
        index_job = job_facts(found) if found is not None else None
    decision = decide_dataset(name=name, spec=spec, status=old, batches=batches, index_job=index_job,
                              generation=generation, now=now, settings=settings, uid=meta.get("uid"))
    await apply(kube, Target(DATASETS, body, dataset_spec=spec), decision.effects, settings=settings, now=now)
    return decision


async def reconcile_batch(
    kube: Kube,
    body: dict[str, Any],
    dataset: dict[str, Any] | None,
    *,
    settings: Settings,
    now: datetime | None = None,
    gone_pods: Sequence[PodFacts] = (),
    specs: SpecCache | None = None,
) -> BatchDecision | None:
    """One reconciliation of a RenderBatch; ``dataset`` is its owner's body (None: gone).

    ``specs``: the validated specs of datasets, kept between ticks (validated here when None).

    ``gone_pods``: what the pod watch remembered of this batch's pods (``pods.PodMemory``).
    A 409 on the status patch (the batch changed since ``body`` was read, e.g. a lagging watch
    still shows an older attempt) re-reads the batch and decides again: a stale body never
    re-creates a deleted attempt's Job.
    """
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            return await _reconcile_batch(kube, body, dataset, settings=settings, now=now, gone_pods=gone_pods,
                                          specs=specs)
        except Conflict:
            if attempt == CONFLICT_RETRIES:
                raise
            meta = body["metadata"]
            fresh = await kube.get(BATCHES, meta["namespace"], meta["name"])
            if fresh is None:
                return None
            logger.debug("batch %s changed since it was read: deciding again", meta["name"])
            body = fresh
    raise AssertionError("unreachable")


async def _reconcile_batch(
    kube: Kube,
    body: dict[str, Any],
    dataset: dict[str, Any] | None,
    *,
    settings: Settings,
    now: datetime | None = None,
    gone_pods: Sequence[PodFacts] = (),
    specs: SpecCache | None = None,
) -> BatchDecision | None:
    now = now or datetime.now(UTC)
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    if dataset is None:
        return None  # the owner is gone: garbage collection removes us and our Jobs
    if not owned_by(controller_uid(meta), (dataset.get("metadata") or {}).get("uid")):
        return None  # a dataset re-created under the same name is not our owner: we are garbage too
    dspec, _ = specs.validated(dataset, settings=settings) if specs is not None else validated_spec(
        dataset, settings=settings)
    if dspec is None:
        return None
    spec = RenderBatchSpec.model_validate(body.get("spec") or {})
    old = RenderBatchStatus.model_validate(body.get("status") or {})
    if old.phase in (BatchPhase.SUCCEEDED, BatchPhase.FAILED):
        return None  # final: the dataset folds and deletes it
    job = None
    pods: list[dict[str, Any]] = []
    if old.attempt > 0:
        job = await kube.get(JOBS, ns, job_name(name, old.attempt))
        if job is not None:
            pods = await kube.list(PODS, ns, labels={LABEL_BATCH: name})
    facts = [pod_facts(p) for p in pods]
    nodes = {p.node for p in facts} - {""}
    node_labels = {n: lbl for n in sorted(nodes) if (lbl := await kube.node_labels(n)) is not None}
    decision = decide_batch(
        dataset=spec.dataset, namespace=ns, name=name, spec=spec, status=old, dataset_spec=dspec,
        job=job_facts(job) if job is not None else None, pods=facts, generation=int(meta.get("generation") or 0),
        now=now, settings=settings, node_labels=node_labels, gone_pods=gone_pods,
        uid=meta.get("uid"))
    await apply(kube, Target(BATCHES, body, dataset_spec=dspec, dataset=dataset), decision.effects,
                settings=settings, now=now)
    return decision


__all__ = ["SpecCache", "apply", "reconcile_batch", "reconcile_dataset", "validated_spec"]
