"""Status writes on the observed resourceVersion: a stale body is refused and decided again (issue #22 item 6).

kopf hands timers the body from its watch, which may lag. A batch decided on an old body (attempt 1
while the API already holds attempt 2, whose Job a1 was deleted) would re-create Job a1 and render
its shards twice. The decision's first write is its status patch (or an empty fence) on the
body's ``resourceVersion``; the API answers 409, the adapter re-reads and decides again.
The fake below stands at our own boundary (the API adapter): it keeps objects with versions and
refuses a preconditioned patch of an older version, as the API server does.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

from builders import batch_spec, manifest, wire

from parallel_synth.cluster.kube import BATCHES, DATASETS, JOBS, Conflict, Resource
from parallel_synth.cluster.reconcile import SpecCache, reconcile_batch, reconcile_dataset
from parallel_synth.settings import Settings

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)


class VersionedKube:
    """Objects by (plural, name) with a resourceVersion; preconditioned patches are checked."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.rv = 10
        self.calls: list[tuple[str, str, str]] = []
        self.conflicts = 0

    def put(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[(resource.plural, body["metadata"]["name"])] = body
        return copy.deepcopy(body)

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((resource.plural, name))
        return copy.deepcopy(found) if found is not None else None

    async def list(self, resource: Resource, namespace: str, *, labels: dict[str, str] | None = None
                   ) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (plural, _), o in self.objects.items() if plural == resource.plural
                and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in (labels or {}).items())]

    async def node_labels(self, name: str) -> dict[str, str] | None:
        return None

    async def create(self, resource: Resource, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append(("create", resource.plural, body["metadata"].get("name") or ""))
        if (resource.plural, body["metadata"].get("name")) in self.objects:
            return False
        if body["metadata"].get("name"):
            self.put(resource, body)
        return True

    async def patch(self, resource: Resource, namespace: str, name: str, patch: dict[str, Any], *,
                    status: bool = False, resource_version: str | None = None) -> dict[str, Any] | None:
        self.calls.append(("patch/status" if status else "patch", resource.plural, name))
        obj = self.objects.get((resource.plural, name))
        if obj is None:
            return None
        if resource_version is not None and resource_version != obj["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise Conflict(409, f"the object has been modified; {name}")
        if status:
            obj["status"] = {**(obj.get("status") or {}), **{k: v for k, v in patch["status"].items()}}
        return self.put(resource, obj)

    async def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        self.calls.append(("delete", resource.plural, name))
        return self.objects.pop((resource.plural, name), None) is not None


DATASET = {**manifest(wire(), namespace="ns", generation=1), "kind": "SynthDataset"}
DATASET["metadata"].update(uid="u-ds", creationTimestamp="2026-01-01T00:00:00Z")


def rb(status: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "parallelsynth.io/v1alpha1", "kind": "RenderBatch",
            "metadata": {"name": "ds-b0", "namespace": "ns", "uid": "u-rb", "generation": 1,
                         "labels": {"parallelsynth.io/dataset": "ds"}},
            "spec": batch_spec(shard_count=4, parallelism=2).wire(), "status": status}


def test_a_stale_batch_body_never_recreates_a_deleted_attempts_job() -> None:
    kube = VersionedKube()
    stale = kube.put(BATCHES, rb({"phase": "Running", "attempt": 1, "job": "ds-b0-a1", "shardsDone": 0}))
    # since then: attempt 1 failed, its Job was deleted, attempt 2 waits for its backoff
    kube.put(BATCHES, rb({"phase": "Running", "attempt": 2, "job": "ds-b0-a2", "shardsDone": 0,
                          "retryAfter": "2026-01-01T02:00:00Z"}))
    decision = asyncio.run(reconcile_batch(kube, stale, DATASET, settings=Settings(), now=NOW))  # type: ignore[arg-type]
    assert kube.conflicts == 1
    assert ("create", "jobs", "ds-b0-a1") not in kube.calls  # the stale decision wrote nothing
    assert decision is not None and decision.status.attempt == 2 and decision.create_job is None
    assert (JOBS.plural, "ds-b0-a1") not in kube.objects


def test_a_stale_dataset_body_is_decided_again_before_any_batch_is_created() -> None:
    kube = VersionedKube()
    stale = kube.put(DATASETS, DATASET)
    first = asyncio.run(reconcile_dataset(kube, stale, settings=Settings(), now=NOW))  # type: ignore[arg-type]
    assert first is not None and first.create
    created = [c for c in kube.calls if c[0] == "create" and c[1] == "renderbatches"]
    kube.calls.clear()
    # the stale body again (no status yet): the fence refuses it, the fresh one opens nothing new
    again = asyncio.run(reconcile_dataset(kube, stale, settings=Settings(), now=NOW))  # type: ignore[arg-type]
    assert kube.conflicts == 1
    assert kube.calls[0][0] == "patch/status"  # the status (or its fence) is the first write
    assert again is not None and again.create == [] and created


def test_batch_ticks_validate_their_dataset_once_per_generation() -> None:
    """Issue #24: reconcile used to re-validate the owning dataset on every batch tick."""
    kube = VersionedKube()
    specs = SpecCache()
    body = kube.put(BATCHES, rb({"phase": "Running", "attempt": 1, "job": "ds-b0-a1"}))
    for _ in range(3):
        body = kube.objects[(BATCHES.plural, "ds-b0")]
        asyncio.run(reconcile_batch(kube, copy.deepcopy(body), DATASET, settings=Settings(), now=NOW,  # type: ignore[arg-type]
                                    specs=specs))
    assert specs.misses == 1
    edited = copy.deepcopy(DATASET)
    edited["metadata"]["generation"] = 2
    edited["spec"]["image"] = ""  # invalid now: the new generation gets its own verdict
    body = kube.objects[(BATCHES.plural, "ds-b0")]
    assert asyncio.run(reconcile_batch(kube, copy.deepcopy(body), edited, settings=Settings(), now=NOW,  # type: ignore[arg-type]
                                       specs=specs)) is None
    assert specs.misses == 2
    assert specs.validated(edited, settings=Settings())[0] is None and specs.misses == 2


def test_a_batch_of_a_deleted_dataset_is_not_run_with_the_spec_of_its_successor() -> None:
    """Issue #22 item 1: the batch timer finds its dataset by name; a re-created dataset is not its owner."""
    kube = VersionedKube()
    orphan = rb({"phase": "Running", "attempt": 0})
    orphan["metadata"]["ownerReferences"] = [{"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
                                              "name": "ds", "uid": "u-old-ds", "controller": True}]
    body = kube.put(BATCHES, orphan)
    assert asyncio.run(reconcile_batch(kube, body, DATASET, settings=Settings(), now=NOW)) is None  # type: ignore[arg-type]
    assert kube.calls == []
    orphan["metadata"]["ownerReferences"][0]["uid"] = DATASET["metadata"]["uid"]  # its own dataset: it runs
    body = kube.put(BATCHES, orphan)
    assert asyncio.run(reconcile_batch(kube, body, DATASET, settings=Settings(), now=NOW)) is not None  # type: ignore[arg-type]
    assert ("create", "jobs", "ds-b0-a1") in kube.calls
