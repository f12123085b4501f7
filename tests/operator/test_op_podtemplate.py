"""spec.podTemplate and spec.queue on the Jobs the operator builds (issue #17).

Every podTemplate field lands in a Job that the Kubernetes batch/v1 schema accepts; the merged
pods keep the operator's invariants; refused fields are named with their path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import pytest
from builders import CLUSTER, batch_spec, index_job, manifest, render_job, spec, wire

from synth_contract.validation import validate_document

K8S_VERSION = "1.33.0"
OWNER_UID = "0e0b0c1a-0000-4000-8000-000000000001"

FULL_TEMPLATE: dict[str, Any] = {
    "labels": {"team": "vision", "cost-centre": "cc-42"},
    "annotations": {"example.com/owner": "vision@example.com"},
    "priorityClassName": "batch-low",
    "runtimeClassName": "nvidia",
    "imagePullSecrets": [{"name": "registry-creds"}],
    "env": [
        {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key"}}},
        {"name": "SITE", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "name", "optional": True}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
    ],
    "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "gpu.example.com/class", "operator": "In", "values": ["l4", "a10g"]}]},
            {"matchExpressions": [{"key": "gpu.example.com/class", "operator": "In", "values": ["l40s"]}],
             "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["bad-node"]}]},
        ]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east1-b"]}]}},
        ],
    }},
    "topologySpreadConstraints": [
        {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": {"matchLabels": {"parallelsynth.io/dataset": "ds"}}, "minDomains": 1,
         "nodeAffinityPolicy": "Honor", "nodeTaintsPolicy": "Ignore"},
    ],
}


def batch_job(*, attempt: int = 1, **overrides: Any) -> dict[str, Any]:
    return render_job(spec(**overrides), attempt=attempt, parallelism=4, owner_uid=OWNER_UID)


def dataset_job(**overrides: Any) -> dict[str, Any]:
    return index_job(spec(**overrides))


def validate(job: dict[str, Any]) -> None:
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)


CASES: dict[str, dict[str, Any]] = {
    "every-field": {"podTemplate": FULL_TEMPLATE},
    "every-field-queued": {"podTemplate": FULL_TEMPLATE, "queue": "team-vision"},
    "on-demand-with-node-affinity": {"podTemplate": FULL_TEMPLATE, "nodePool": {"spot": False}},
    "queue-only": {"queue": "team-vision"},
    **{f"only-{k}": {"podTemplate": {k: v}} for k, v in FULL_TEMPLATE.items()},
}


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_jobs_with_pod_template_fields_validate_against_the_batch_v1_schema(overrides: dict[str, Any]) -> None:
    validate(batch_job(**overrides))
    validate(dataset_job(**overrides))


def _invariants(job: dict[str, Any]) -> dict[str, Any]:
    """What the operator owns in a render Job (everything but what podTemplate may add)."""
    pod = job["spec"]["template"]
    ps = pod["spec"]
    c = ps["containers"][0]
    return {
        "selector-labels": {k: v for k, v in pod["metadata"]["labels"].items() if k.startswith("parallelsynth.io/")
                            or k.startswith("app.kubernetes.io/")},
        "pod-security": ps["securityContext"],
        "container-security": c["securityContext"],
        "restart": ps["restartPolicy"],
        "sa": (ps["serviceAccountName"], ps["automountServiceAccountToken"]),
        "failure-policy": job["spec"]["podFailurePolicy"],
        "backoff": (job["spec"]["backoffLimitPerIndex"], job["spec"]["maxFailedIndexes"]),
        "command": (c["command"], c["args"]),
        "resources": c["resources"],
        "tolerations": ps["tolerations"],
        "volumes": ps["volumes"],
        # the operator's variables, first and unchanged (SYNTH_SPEC_JSON carries the spec, podTemplate too)
        "operator-env": [e if e["name"] != "SYNTH_SPEC_JSON" else e["name"]
                         for e in c["env"][: len(batch_job()["spec"]["template"]["spec"]["containers"][0]["env"])]],
    }


def test_merged_pods_keep_the_operators_invariants() -> None:
    plain, merged = batch_job(), batch_job(podTemplate=FULL_TEMPLATE)
    assert _invariants(merged) == _invariants(plain)
    pod = merged["spec"]["template"]
    ps = pod["spec"]
    assert pod["metadata"]["labels"]["team"] == "vision"
    assert pod["metadata"]["annotations"] == {"example.com/owner": "vision@example.com"}
    assert (ps["priorityClassName"], ps["runtimeClassName"]) == ("batch-low", "nvidia")
    assert {"name": "registry-creds"} in ps["imagePullSecrets"]
    names = [e["name"] for e in ps["containers"][0]["env"]]
    assert names[-4:] == ["WANDB_API_KEY", "SITE", "NODE", "MEM"]  # after the operator's, none replaced
    assert all("value" not in e for e in ps["containers"][0]["env"][-4:])
    assert ps["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    # the Job itself is unchanged: no queue, never suspended by the operator
    assert "suspend" not in merged["spec"] and merged["metadata"]["labels"] == plain["metadata"]["labels"]


def test_node_affinity_is_anded_with_the_operators_on_demand_requirement() -> None:
    ps = batch_job(podTemplate=FULL_TEMPLATE, nodePool={"spot": False})["spec"]["template"]["spec"]
    terms = ps["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 2  # one per dataset term (ORed), each with the operator's NotIn-spot expressions
    for term in terms:
        keys = [e["key"] for e in term["matchExpressions"]]
        assert keys[0] == "gpu.example.com/class"
        assert {"cloud.google.com/gke-spot", "karpenter.sh/capacity-type"} <= set(keys)
    assert terms[1]["matchFields"][0]["key"] == "metadata.name"
    spot = batch_job(podTemplate=FULL_TEMPLATE)["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    prefs = spot["preferredDuringSchedulingIgnoredDuringExecution"]
    assert prefs[-1]["weight"] == 10 and len(prefs) > 1  # the operator's spot preferences stay


def test_index_job_gets_metadata_classes_secrets_and_env_but_no_gpu_placement() -> None:
    ps = dataset_job(podTemplate=FULL_TEMPLATE)["spec"]["template"]["spec"]
    assert ps["priorityClassName"] == "batch-low" and {"name": "registry-creds"} in ps["imagePullSecrets"]
    assert "runtimeClassName" not in ps and "affinity" not in ps and "topologySpreadConstraints" not in ps
    assert ps["containers"][0]["env"][-1]["name"] == "MEM"


def test_queue_labels_the_job_and_creates_it_suspended_with_partial_admission() -> None:
    job = batch_job(queue="team-vision", nodePool={"spot": True})
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-vision"
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["annotations"]["kueue.x-k8s.io/job-min-parallelism"] == "1"
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    idx = dataset_job(queue="team-vision")
    assert idx["spec"]["suspend"] is True and idx["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-vision"


def test_under_kueue_the_flavor_picks_capacity_not_the_spot_fallback() -> None:
    bspec = batch_spec(parallelism=4, capacity="on-demand")
    job = render_job(spec(queue="q"), bspec=bspec, parallelism=4, owner_uid=OWNER_UID)
    na = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in na  # no NotIn-spot against a spot flavor


def _errors(pod_template: dict[str, Any]) -> list[str]:
    raw = manifest(wire(CLUSTER, podTemplate=pod_template))
    obj, errors = validate_document(raw, now=datetime.now(UTC))
    assert obj is None
    return [str(e) for e in errors]


@pytest.mark.parametrize(("template", "path", "words"), [
    ({"env": [{"name": "TOKEN", "value": "hunter2"}]}, "spec.podTemplate.env[0].value", "valueFrom"),
    ({"env": [{"name": "TOKEN"}]}, "spec.podTemplate.env[0]", "valueFrom is required"),
    ({"env": [{"name": "SYNTH_SPEC_JSON", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]},
     "spec.podTemplate.env[0].name", "set by the operator"),
    ({"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "a"}, "secretKeyRef": {"name": "s", "key": "k"}}}]},
     "spec.podTemplate.env[0].valueFrom", "exactly one"),
    ({"labels": {"parallelsynth.io/dataset": "other"}}, "spec.podTemplate.labels", "parallelsynth.io/dataset"),
    ({"labels": {"kueue.x-k8s.io/queue-name": "q"}}, "spec.podTemplate.labels", "spec.queue"),
    ({"annotations": {"batch.kubernetes.io/job-completion-index": "1"}}, "spec.podTemplate.annotations", "reserved"),
    ({"affinity": {"podAntiAffinity": {}}}, "spec.podTemplate.affinity", "only nodeAffinity"),
    ({"securityContext": {"runAsUser": 0}}, "spec.podTemplate.securityContext", "unknown field"),
    ({"priorityClassName": "Not_A_Name"}, "spec.podTemplate.priorityClassName", "pattern"),
])
def test_refused_fields_are_named_with_their_path(template: dict[str, Any], path: str, words: str) -> None:
    errors = _errors(template)
    assert any(e.startswith(path + ":") and words in e for e in errors), errors
