"""The Job of a batch attempt: whole-object checks and validation against Kubernetes' schema."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from builders import batch_spec, index_job, job_status, render_job, spec

from parallel_synth.cluster.observe import job_facts
from parallel_synth.decisions.cost import SPOT_LABELS, Capacity, capacity_of_node, spot_label_values
from parallel_synth.decisions.jobs import job_name, short_name

K8S_VERSION = "1.33.0"


def make_job(*, attempt: int = 1, offset: int = 0, completions: int = 10, **spec_overrides: Any) -> dict[str, Any]:
    return render_job(spec(**spec_overrides), batch="ds-b4", bspec=batch_spec(shard_start=40, parallelism=3),
                      attempt=attempt, offset=offset, completions=completions, parallelism=3,
                      owner_uid="0e0b0c1a-0000-4000-8000-000000000001")


def validate(job: dict[str, Any]) -> None:
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)


CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "cpu-only": {"nodePool": {"gpusPerWorker": 0, "spot": False}},
    "multi-gpu-spot": {"nodePool": {"gpusPerWorker": 4, "gpuType": "A10G", "nodeSelector": {"pool": "gpu"},
                                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "render",
                                                     "effect": "NoSchedule"}]}},
    "no-secret-file-output": {"output": {"uri": "file:///data"}},
}


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_every_job_validates_against_the_kubernetes_schema(overrides: dict[str, Any]) -> None:
    validate(make_job(**overrides))
    validate(make_job(attempt=3, offset=4, completions=6, **overrides))


def test_job_shape() -> None:
    job = make_job()
    js = job["spec"]
    assert job["metadata"]["name"] == "ds-b4-a1"
    assert job["metadata"]["labels"] == {
        "parallelsynth.io/dataset": "ds", "parallelsynth.io/batch": "ds-b4",
        "app.kubernetes.io/managed-by": "parallel-synth", "parallelsynth.io/attempt": "1"}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "RenderBatch"
    assert (js["completionMode"], js["completions"], js["parallelism"]) == ("Indexed", 10, 3)
    assert js["podReplacementPolicy"] == "Failed"
    assert js["backoffLimitPerIndex"] == 3 and 1 <= js["maxFailedIndexes"] <= 10
    rules = js["podFailurePolicy"]["rules"]
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules
    assert any(r["action"] == "FailJob" and r["onExitCodes"]["values"] == [2] for r in rules)
    assert any(r["action"] == "Ignore" and r.get("onExitCodes", {}).get("values") == [143] for r in rules)
    pod = js["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] >= 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    c = pod["containers"][0]
    assert c["command"] == ["synth-render"]
    assert c["args"] == ["--dataset", "ds", "--shard-start", "40"]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e for e in c["env"]}
    # issue #22 item 8: the spec is mounted from the attempt's ConfigMap, not copied into the env
    assert "SYNTH_SPEC_JSON" not in env and env["SYNTH_SPEC_FILE"]["value"] == "/etc/synth/spec.json"
    assert {"name": "spec", "mountPath": "/etc/synth", "readOnly": True} in c["volumeMounts"]
    assert {"name": "spec", "configMap": {"name": "ds-b4-a1-spec", "items": [{"key": "spec.json", "path": "spec.json"}]}
            } in pod["volumes"]
    assert "JOB_COMPLETION_INDEX" not in env  # Kubernetes sets it
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
    tol = {(t["key"], t.get("value")) for t in pod["tolerations"]}
    assert ("nvidia.com/gpu", None) in tol
    assert {("cloud.google.com/gke-spot", "true"), ("kubernetes.azure.com/scalesetpriority", "spot"),
            ("eks.amazonaws.com/capacityType", "SPOT")} <= tol
    prefs = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    keys = {p["preference"]["matchExpressions"][0]["key"] for p in prefs}
    assert {"karpenter.sh/capacity-type", "eks.amazonaws.com/capacityType"} <= keys


def test_cpu_only_on_demand_has_no_gpu_and_avoids_spot() -> None:
    pod = make_job(nodePool={"gpusPerWorker": 0, "spot": False})["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert pod["tolerations"] == []
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert all(e["operator"] == "NotIn" for e in term["matchExpressions"])


def test_retry_attempt_covers_the_missing_window_only() -> None:
    job = make_job(attempt=2, offset=6, completions=4)
    assert job["metadata"]["name"] == "ds-b4-a2"
    assert job["spec"]["completions"] == 4
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "46"
    prog = job_facts(job_status(job, completed="0-1", failed="3"))
    assert prog.completed == [(6, 7)] and prog.failed == [(9, 9)]


def test_names_stay_within_63_characters() -> None:
    long = "d" * 63
    name = short_name(long, "-b123456")
    assert len(name) <= 63 and name.endswith("-b123456")
    assert len(job_name(name, 12)) <= 63
    assert short_name(long, "-b1") != short_name("d" * 62 + "e", "-b1")


@pytest.mark.parametrize("name", ["ds", "a" * 63])
def test_index_job_validates_and_runs_synthctl_index_without_a_gpu(name: str) -> None:
    from parallel_synth.decisions.jobs import index_job_name

    job = index_job(spec(output={"uri": "s3://bkt/p", "credentialsSecret": "creds"}), name=name)
    validate(job)
    assert job["metadata"]["name"] == index_job_name(name) and len(job["metadata"]["name"]) <= 63
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["synthctl"] and container["args"] == ["index", "--dataset", name]
    assert pod["automountServiceAccountToken"] is False and "tolerations" not in pod
    assert not any(k.endswith("gpu") for k in container["resources"]["limits"])
    secrets = [e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert secrets == ["creds", "creds"]
    assert job_facts(job).finished is None
    assert job_facts({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}).finished == "Failed"


def _matches(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    """A node selector requirement as the scheduler evaluates it (In / NotIn)."""
    value = labels.get(expr["key"])
    if expr["operator"] == "In":
        return value in expr["values"]
    return value not in expr["values"]


@pytest.mark.parametrize(("key", "value"), [(k, v) for k, spot in SPOT_LABELS.items() for v in spot_label_values(spot)])
def test_on_demand_affinity_excludes_every_node_the_cost_code_bills_as_spot(key: str, value: str) -> None:
    """One spot-label table: a node billed as spot can never take an on-demand pod, and is preferred by spot pods."""
    node = {key: value}
    assert capacity_of_node(node) == Capacity.SPOT
    on_demand = make_job(nodePool={"spot": False})["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    term = on_demand["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert not all(_matches(e, node) for e in term["matchExpressions"])
    assert all(_matches(e, {}) for e in term["matchExpressions"])  # an on-demand node without labels is fine
    spot = make_job()["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    prefs = [p["preference"]["matchExpressions"][0] for p in spot["preferredDuringSchedulingIgnoredDuringExecution"]]
    assert any(_matches(e, node) for e in prefs)


def test_the_spec_configmap_of_an_attempt_holds_the_spec_and_is_immutable() -> None:
    from parallel_synth.decisions.jobs import JobRequest, Owner, build_spec_configmap

    req = JobRequest(dataset="ds", namespace="ns", batch="ds-b4", batch_spec=batch_spec(shard_start=40),
                     attempt=2, shard_offset=0, completions=10, parallelism=3)
    cm = build_spec_configmap(req, spec(), Owner(kind="RenderBatch", name="ds-b4", uid="u-rb"))
    assert cm["metadata"]["name"] == "ds-b4-a2-spec" and cm["immutable"] is True
    assert json.loads(cm["data"]["spec.json"])["samples"] == 10_000
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "u-rb"
    kubernetes_validate.validate(cm, K8S_VERSION, strict=True)
    job = render_job(spec(), batch="ds-b4", bspec=batch_spec(shard_start=40), attempt=2)
    assert len(json.dumps(job)) < len(json.dumps(cm)) + 4096  # the Job no longer carries the spec itself
