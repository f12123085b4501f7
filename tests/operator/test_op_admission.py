"""The cluster admin's policy (issue #12 items 12-13): what the operator refuses to run, and how it says so.

Each dataset is applied to the API emulator and reconciled once by the real ``reconcile_dataset``:
a refused one gets ``SpecValid=False`` naming the field, a ``SpecInvalid`` Warning Event, and no
RenderBatch; an allowed one gets its batches.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from builders import SMALL, manifest, wire
from kmockx import ThreadedKMock
from opcluster import DS, EVENTS, NS, RB

from parallel_synth.cluster.kube import Kube
from parallel_synth.cluster.reconcile import reconcile_dataset
from parallel_synth.settings import PodSettings, PolicySettings, Settings

IMAGE = "registry.example.com/ml/renderer@sha256:" + "ab" * 32

DATASET = manifest(wire(
    SMALL, samples=300, shardSize=100, output={"uri": "s3://bucket/data", "credentialsSecret": "synth-s3"}, image=IMAGE,
    nodePool={"nodeSelector": {"pool": "gpu"},
              "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
), namespace=NS)

STRICT = Settings(policy=PolicySettings(
    allowed_image_prefixes=("registry.example.com/ml/",),
    require_image_digest=True,
    allowed_node_selector_keys=("pool",),
    allowed_toleration_keys=("nvidia.com/gpu",),
    allowed_credentials_secrets=("synth-s3",),
))


def reconcile(km: ThreadedKMock, spec: dict[str, Any], settings: Settings) -> dict[str, Any]:
    body = copy.deepcopy(DATASET)
    for key, value in spec.items():
        body["spec"][key] = value if not isinstance(value, dict) else {**body["spec"].get(key, {}), **value}
    created = km.request("POST", DS, body)

    async def once() -> None:
        kube = Kube(km.url)
        try:
            await reconcile_dataset(kube, created, settings=settings)
        finally:
            await kube.close()

    asyncio.run(once())
    return km.request("GET", f"{DS}/ds")


def spec_valid(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "SpecValid")


REFUSED: dict[str, tuple[dict[str, Any], Settings, str]] = {
    "file-output-on-a-cluster": ({"output": {"uri": "file:///tmp/parallel-synth"}}, Settings(),
                                 "spec.output.uri: file:///tmp/parallel-synth: file:// outputs vanish"),
    "file-output-outside-the-shared-volume": (
        {"output": {"uri": "file:///etc/passwd-dir"}},
        Settings(pods=PodSettings(file_output_claim="shared", file_output_path="/data")),
        "spec.output.uri: file:///etc/passwd-dir: on this cluster file:// outputs must lie below file:///data"),
    "image-from-another-registry": ({"image": "docker.io/evil/miner:latest"}, STRICT,
                                    "spec.image: docker.io/evil/miner:latest is not allowed on this cluster"),
    "image-without-digest": ({"image": "registry.example.com/ml/renderer:1.0"}, STRICT,
                             "spec.image: registry.example.com/ml/renderer:1.0 must be pinned by digest"),
    "node-selector-key": ({"nodePool": {"nodeSelector": {"kubernetes.io/hostname": "db-1"}}}, STRICT,
                          "spec.nodePool.nodeSelector.kubernetes.io/hostname: node label"),
    "control-plane-toleration-by-default": (
        {"nodePool": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}},
        Settings(), "spec.nodePool.tolerations[0]: taint node-role.kubernetes.io/control-plane"),
    "tolerate-everything": ({"nodePool": {"tolerations": [{"operator": "Exists"}]}}, Settings(),
                            "spec.nodePool.tolerations[0]: a toleration without a key tolerates every taint"),
    "toleration-not-listed": ({"nodePool": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}, STRICT,
                              "spec.nodePool.tolerations[0]: taint dedicated may not be tolerated"),
    "someone-elses-secret": ({"output": {"credentialsSecret": "billing-db"}}, STRICT,
                             "spec.output.credentialsSecret: Secret billing-db may not be used"),
    "secret-through-pod-template-env": (
        {"podTemplate": {"env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "billing-db", "key": "pw"}}}]}},
        STRICT, "spec.podTemplate.env[0].valueFrom.secretKeyRef.name: Secret billing-db may not be used"),
    "node-pinned-through-pod-template-affinity": (
        {"podTemplate": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["db-1"]}]}]}}}}},
        STRICT, "matchExpressions[0].key: node label kubernetes.io/hostname is not allowed"),
    "captioner-module-path-by-default": (  # the dataset's author would choose what render pods import
        {"render": {"captioner": "os:system"}}, Settings(),
        "spec.render.captioner: os:system: module:function captioners are not allowed on this cluster"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_policy_violations_are_refused_with_condition_and_event(cluster: ThreadedKMock, case: str) -> None:
    spec, settings, message = REFUSED[case]
    obj = reconcile(cluster, spec, settings)
    cond = spec_valid(obj)
    assert cond["status"] == "False" and message in cond["message"]
    assert obj["status"]["phase"] == "Failed"
    events = [e for e in cluster.items(EVENTS) if e["reason"] == "SpecInvalid"]
    assert events and events[0]["type"] == "Warning" and message in events[0]["message"]
    assert cluster.items(RB) == []


ALLOWED: dict[str, tuple[dict[str, Any], Settings]] = {
    "strict-policy-kept": ({}, STRICT),
    "default-settings-any-image": ({"image": "ghcr.io/parallel-synth/renderer:0.1.0",
                                    "nodePool": {"nodeSelector": {"any/key": "x"}}}, Settings()),
    "file-output-on-the-shared-volume": ({"output": {"uri": "file:///data/synth"}},
                                         Settings(pods=PodSettings(file_output_claim="shared", file_output_path="/data"))),
    "captioner-entry-point-name": ({"render": {"captioner": "blip2"}}, STRICT),
    "captioner-module-path-allowed-by-the-admin": ({"render": {"captioner": "mycaps.blip:caption"}},
                                                   Settings(policy=PolicySettings(allow_captioner_modules=True))),
}


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_datasets_within_the_policy_run(cluster: ThreadedKMock, case: str) -> None:
    spec, settings = ALLOWED[case]
    obj = reconcile(cluster, spec, settings)
    assert spec_valid(obj)["status"] == "True"
    assert cluster.items(RB), "an allowed dataset gets its RenderBatches"
