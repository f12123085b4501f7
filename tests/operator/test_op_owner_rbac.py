"""Children with ``blockOwnerDeletion: true`` need ``update`` on their owner's finalizers (issue #22 item 5).

Where the API server runs the OwnerReferencesPermissionEnforcement admission plugin (OpenShift
by default), creating a child whose owner reference blocks the owner's deletion is refused
unless the creator may update ``<owner plural>/finalizers``. ``kube.API_CALLS`` lists what the
operator needs (the install tests check that chart and kustomize grant each entry).
"""

from __future__ import annotations

from builders import index_job, render_job, spec

from parallel_synth.cluster import kube
from parallel_synth.cluster.reconcile import batch_body
from parallel_synth.decisions.effects import CreateBatch
from synth_contract.api import GROUP, RenderBatchSpec

PLURALS = {"SynthDataset": "synthdatasets", "RenderBatch": "renderbatches"}


def test_every_blocking_owner_kind_has_its_finalizers_right() -> None:
    dataset = {"metadata": {"name": "ds", "namespace": "ns", "uid": "u-ds"}}
    children = [
        batch_body(dataset, CreateBatch("ds-b0", 0, RenderBatchSpec(dataset="ds", shard_start=0, shard_count=1))),
        render_job(spec(), owner_uid="u-rb"),
        index_job(spec()),
    ]
    kinds = {ref["kind"] for child in children for ref in child["metadata"]["ownerReferences"]
             if ref.get("blockOwnerDeletion")}
    assert kinds == {"SynthDataset", "RenderBatch"}
    for kind in kinds:
        assert (GROUP, f"{PLURALS[kind]}/finalizers", "update") in kube.API_CALLS
