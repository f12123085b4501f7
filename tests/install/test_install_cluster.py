"""Cluster-install defects of issue #12 (items 8-10, 13-14), checked on the rendered chart and kustomize.

Where a value must reach the operator, the test reads the env of the rendered Deployment into
``Settings.from_env`` (as the pod would) and builds the Job the operator would create.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from builders import SMALL, index_job, render_job, spec
from install_helpers import CHART, MANIFESTS, ROOT, load_all, run
from prometheus_client import CollectorRegistry, generate_latest

from parallel_synth.cluster.metrics import Metrics
from parallel_synth.commands.operator import operator as operator_cmd
from parallel_synth.commands.operator import peering_priority
from parallel_synth.settings import PodSettings, Settings
from synth_contract.api import SynthDatasetSpec, SynthDatasetStatus

SPEC = spec(SMALL, samples=1000, shardSize=100, image="registry.example.com/ml/renderer:1.0",
            output={"uri": "s3://bucket/data", "credentialsSecret": "s3"}, estimates={"bytesPerSample": 8_000_000})


def deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == "Deployment")


def operator_env(objs: list[dict[str, Any]], pod_name: str = "ps-operator-7d9f8-abcde") -> dict[str, str]:
    """The operator container's environment as the kubelet would set it (downward API resolved)."""
    container = deployment(objs)["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[e["name"]] = pod_name
    return env


def batch_job(settings: PodSettings, s: SynthDatasetSpec = SPEC) -> dict[str, Any]:
    return render_job(s, namespace="synth", parallelism=2, owner_uid="0e0b0c1a-0000-4000-8000-000000000001",
                      settings=settings)


# ------------------------------------------------------------------ 8: peering priority


def _cli_priority(args: list[str], env: dict[str, str]) -> int:
    """The priority `synthctl operator ARGS` runs with (its --priority, else the CLI default)."""
    given = [a.split("=", 1)[1] for a in args if a.startswith("--priority=")]
    default = next(p.default for p in operator_cmd.params if p.name == "priority_option")
    return peering_priority(str(given[-1] if given else default), env)


def test_operator_replicas_get_distinct_peering_priorities(render_chart) -> None:
    objs = render_chart("--set", "operator.replicas=2")
    args = deployment(objs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert any(a.startswith("--peering=") for a in args) and "--standalone" not in args
    pods = ["ps-parallel-synth-operator-5d9c7b6f4-x2kq9", "ps-parallel-synth-operator-5d9c7b6f4-m7tzp"]
    first, second = (_cli_priority(args, operator_env(objs, pod)) for pod in pods)
    assert first != second, "kopf pauses every replica when two peers share a priority"
    assert first == _cli_priority(args, operator_env(objs, pods[0])), "a replica keeps its priority"
    assert peering_priority("7") == 7


# ------------------------------------------------------------------ 9: renderer identity


def test_renderer_service_account_pull_secrets_and_identity_reach_the_jobs(render_chart) -> None:
    objs = render_chart(
        "--set", "renderer.serviceAccountName=synth-render-irsa",
        "--set", "renderer.imagePullSecrets[0].name=regcred",
        "--set", "renderer.serviceAccountAnnotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/render",
        "--set", "operator.watchNamespaces={synth}",
    )
    accounts = [o for o in objs if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "synth-render-irsa"]
    assert {o["metadata"]["namespace"] for o in accounts} == {"parallel-synth", "synth"}
    for sa in accounts:
        assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/render"}
        assert sa["automountServiceAccountToken"] is False
    settings = Settings.from_env(operator_env(objs)).pods
    for job in (batch_job(settings), index_job(SPEC, namespace="synth", settings=settings)):
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "synth-render-irsa"
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["automountServiceAccountToken"] is False
        kubernetes_validate.validate(job, "1.29.0", strict=True)


# ------------------------------------------------------------------ 10: re-namespacing kustomize


def _namespace_overlay(tmp_path: Path, base: Path, namespace: str) -> Path:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": namespace, "resources": [os.path.relpath(base, overlay)]}))
    return overlay


@pytest.mark.parametrize("base", ["", "base"])
def test_a_namespace_overlay_moves_the_whole_kustomize_install(kubectl: str, tmp_path: Path, base: str) -> None:
    overlay = _namespace_overlay(tmp_path, MANIFESTS / base, "ml-ops")
    out = run(kubectl, "kustomize", str(overlay), check=False)
    assert out.returncode == 0, out.stderr
    objs = load_all(out.stdout)
    namespaced = [o for o in objs if o["metadata"].get("namespace")]
    assert namespaced and {o["metadata"]["namespace"] for o in namespaced} == {"ml-ops"}
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"] == ["ml-ops"]
    operator_sa = deployment(objs)["spec"]["template"]["spec"]["serviceAccountName"]
    bindings = [o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for b in bindings:
        for s in b["subjects"]:
            if s["kind"] == "ServiceAccount" and s["name"] == operator_sa:
                assert s["namespace"] == "ml-ops", f"{b['kind']} {b['metadata']['name']} still binds {s}"


# ------------------------------------------------------------------ 13: NetworkPolicy


def _selected(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    want = policy["spec"]["podSelector"].get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in want.items())


@pytest.mark.parametrize("source", ["chart", "chart-namespaced", "kustomize", "kustomize-namespaced"])
def test_renderer_pods_are_fenced_by_a_network_policy(render_chart, render_kustomize, source: str) -> None:
    objs = {"chart": lambda: render_chart(), "chart-namespaced": lambda: render_chart(
                "--set", "operator.watchNamespaces={synth,team-b}"),
            "kustomize": lambda: render_kustomize(""),
            "kustomize-namespaced": lambda: render_kustomize("overlays/namespaced")}[source]()
    renderer_namespaces = {o["metadata"]["namespace"] for o in objs
                           if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "parallel-synth-renderer"}
    policies = {o["metadata"]["namespace"]: o for o in objs if o["kind"] == "NetworkPolicy"
                and o["metadata"]["labels"].get("app.kubernetes.io/component") == "renderer"}
    assert set(policies) == renderer_namespaces
    job = batch_job(PodSettings())
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    index_labels = index_job(SPEC, namespace="synth")[
        "spec"]["template"]["metadata"]["labels"]
    operator_labels = deployment(objs)["spec"]["template"]["metadata"]["labels"]
    for policy in policies.values():
        spec = policy["spec"]
        assert _selected(policy, pod_labels) and _selected(policy, index_labels)
        assert not _selected(policy, operator_labels), "the operator itself must keep its API access"
        assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == []
        dns, store = spec["egress"]
        assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
        assert [p["port"] for p in store["ports"]] == [443]
        blocks = [t["ipBlock"] for t in store["to"]]
        assert blocks and all("169.254.169.254/32" in b.get("except", []) for b in blocks)
        kubernetes_validate.validate(policy, "1.29.0", strict=True)


@pytest.mark.parametrize("source", ["chart", "kustomize", "kustomize-namespaced"])
def test_the_operator_pod_is_fenced_by_its_own_network_policy(render_chart, render_kustomize, source: str) -> None:
    """Issue #24: ingress to health and metrics only, egress to DNS and the API server only."""
    objs = {"chart": lambda: render_chart(), "kustomize": lambda: render_kustomize(""),
            "kustomize-namespaced": lambda: render_kustomize("overlays/namespaced")}[source]()
    dep = deployment(objs)
    mine = [o for o in objs if o["kind"] == "NetworkPolicy" and _selected(o, dep["spec"]["template"]["metadata"]["labels"])]
    assert len(mine) == 1 and mine[0]["metadata"]["namespace"] == dep["metadata"]["namespace"]
    spec = mine[0]["spec"]
    ports = {p["name"]: p["containerPort"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert [sorted(p["port"] for p in rule["ports"]) for rule in spec["ingress"]] == [
        sorted([ports["health"], ports["metrics"]])]
    dns, api = spec["egress"]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert {p["port"] for p in api["ports"]} == {443, 6443, 8443} and "to" not in api
    assert not _selected(mine[0], batch_job(PodSettings())["spec"]["template"]["metadata"]["labels"])
    kubernetes_validate.validate(mine[0], "1.29.0", strict=True)


def test_network_policy_cidrs_and_ports_are_configurable(render_chart) -> None:
    objs = render_chart("--set", "renderer.networkPolicy.objectStore.cidrs={10.0.0.0/8}",
                        "--set", "renderer.networkPolicy.objectStore.ports={9000}",
                        "--set", "renderer.networkPolicy.objectStore.except=null")
    store = next(o for o in objs if o["kind"] == "NetworkPolicy"
                 and o["metadata"]["name"] == "parallel-synth-renderer")["spec"]["egress"][1]
    assert store == {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"protocol": "TCP", "port": 9000}]}
    assert not [o for o in render_chart("--set", "renderer.networkPolicy.enabled=false") if o["kind"] == "NetworkPolicy"
                and o["metadata"]["labels"].get("app.kubernetes.io/component") == "renderer"]


def test_admin_policy_values_reach_the_operator_settings(render_chart) -> None:
    objs = render_chart(
        "--set", "policy.allowedImagePrefixes={registry.example.com/ml/,ghcr.io/parallel-synth/}",
        "--set", "policy.requireImageDigest=true",
        "--set", "policy.allowedNodeSelectorKeys={pool}",
        "--set", "policy.allowedTolerationKeys={nvidia.com/gpu}",
        "--set", "policy.allowedCredentialsSecrets={synth-s3}",
        "--set", "policy.allowCaptionerModules=true",
        "--set", "renderer.fileOutput.claimName=shared-datasets",
        "--set", "renderer.fileOutput.mountPath=/datasets",
    )
    settings = Settings.from_env(operator_env(objs))
    assert settings.policy.allowed_image_prefixes == ("registry.example.com/ml/", "ghcr.io/parallel-synth/")
    assert settings.policy.require_image_digest is True
    assert settings.policy.allowed_node_selector_keys == ("pool",)
    assert settings.policy.allowed_toleration_keys == ("nvidia.com/gpu",)
    assert settings.policy.allowed_credentials_secrets == ("synth-s3",)
    assert settings.policy.allow_captioner_modules is True
    file_spec = SPEC.model_copy(update={"output": SPEC.output.model_copy(update={"uri": "file:///datasets/a"})})
    pod = batch_job(settings.pods, file_spec)["spec"]["template"]["spec"]
    assert {"name": "shared-output", "persistentVolumeClaim": {"claimName": "shared-datasets"}} in pod["volumes"]
    assert {"name": "shared-output", "mountPath": "/datasets"} in pod["containers"][0]["volumeMounts"]
    defaults = Settings.from_env(operator_env(render_chart()))
    assert defaults == Settings(), "default chart values keep the operator's defaults"


def test_kustomize_and_chart_expose_the_same_operator_settings(render_chart, render_kustomize) -> None:
    chart, kustomize = operator_env(render_chart()), operator_env(render_kustomize(""))
    names = {n for n in chart if n.startswith("SYNTH_OPERATOR_")}
    assert names and names == {n for n in kustomize if n.startswith("SYNTH_OPERATOR_")}
    assert Settings.from_env(kustomize) == Settings.from_env(chart) == Settings()


# ------------------------------------------------------------------ 14: pods, versions, roles, test, alerts


def test_render_pods_request_and_cap_their_scratch_space() -> None:
    pod = batch_job(PodSettings())["spec"]["template"]["spec"]
    container = pod["containers"][0]
    request = container["resources"]["requests"]["ephemeral-storage"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["sizeLimit"] == request
    mib = int(request.removesuffix("Mi"))
    shard = SPEC.shard_size * SPEC.estimates.bytes_per_sample  # 800 MB
    assert 2 * shard <= mib * 1024**2 <= 2 * shard + PodSettings().scratch_overhead_bytes + 1024**2
    bigger = SPEC.model_copy(update={"shard_size": 1000})
    assert int(batch_job(PodSettings(), bigger)["spec"]["template"]["spec"]["containers"][0][
        "resources"]["requests"]["ephemeral-storage"].removesuffix("Mi")) > mib


def test_exit_code_3_fails_the_index_without_retries() -> None:
    rules = batch_job(PodSettings())["spec"]["podFailurePolicy"]["rules"]
    fail_index = [r for r in rules if r["action"] == "FailIndex"]
    assert fail_index == [{"action": "FailIndex",
                           "onExitCodes": {"containerName": "render", "operator": "In", "values": [3]}}]
    # Rules apply in order: exit 3 must not be caught by an earlier rule.
    assert all(3 not in (r.get("onExitCodes") or {}).get("values", []) for r in rules[:rules.index(fail_index[0])])


JOB_FEATURES = {  # Job field or pod-failure action -> first Kubernetes minor where it is on by default
    "podFailurePolicy": 26, "backoffLimitPerIndex": 29, "maxFailedIndexes": 29, "podReplacementPolicy": 29,
    "FailIndex": 29,
}


CRD_FEATURES = {  # CEL validation-rule field of a CRD -> first minor where it is on by default
    "messageExpression": 27, "reason": 28, "fieldPath": 28, "optionalOldSelf": 30,
}


def _crd_rule_fields() -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations") or []:
                found.update(rule)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in (CHART / "crds").glob("parallelsynth.io_*.yaml"):
        walk(yaml.safe_load(path.read_text()))
    return found


def test_chart_kube_version_is_the_oldest_that_runs_our_jobs(helm: str) -> None:
    job = batch_job(PodSettings())
    used = {k for k in JOB_FEATURES if k in job["spec"]}
    used |= {r["action"] for r in job["spec"]["podFailurePolicy"]["rules"]} & set(JOB_FEATURES)
    oldest = max([JOB_FEATURES[k] for k in used] + [CRD_FEATURES[k] for k in _crd_rule_fields() & set(CRD_FEATURES)])
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">=1.{oldest}.0-0"
    kubernetes_validate.validate(job, f"1.{oldest}.0", strict=True)
    assert run(helm, "template", "ps", str(CHART), "--kube-version", f"1.{oldest}.0", check=False).returncode == 0
    too_old = run(helm, "template", "ps", str(CHART), "--kube-version", f"1.{oldest - 1}.0", check=False)
    assert too_old.returncode != 0 and "kubeVersion" in too_old.stderr


@pytest.mark.parametrize("source", ["chart", "kustomize"])
def test_namespace_users_get_synthdatasets_through_the_default_roles(render_chart, render_kustomize,
                                                                      source: str) -> None:
    objs = render_chart() if source == "chart" else render_kustomize("")
    roles = [o for o in objs if o["kind"] == "ClusterRole"
             and any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in o["metadata"]["labels"])]

    def allowed(aggregate: str, resource: str, verb: str) -> bool:
        return any(o["metadata"]["labels"].get(f"rbac.authorization.k8s.io/aggregate-to-{aggregate}") == "true"
                   and any(resource in r["resources"] and verb in r["verbs"] for r in o["rules"]) for o in roles)

    for role in ("view", "edit", "admin"):
        assert allowed(role, "synthdatasets", "list") and allowed(role, "renderbatches", "watch")
    assert not allowed("view", "synthdatasets", "create")
    for role in ("edit", "admin"):
        assert allowed(role, "synthdatasets", "create") and allowed(role, "synthdatasets", "delete")
        assert not allowed(role, "renderbatches", "create"), "RenderBatches belong to the operator"
    assert not allowed("edit", "synthdatasets/status", "patch")


def test_helm_test_hook_probes_the_operator_metrics(render_chart) -> None:
    objs = render_chart()
    tests = [o for o in objs if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert len(tests) == 1
    pod = tests[0]
    service = next(o for o in objs if o["kind"] == "Service")
    script = pod["spec"]["containers"][0]["command"][-1]
    port = service["spec"]["ports"][0]["port"]
    assert f"{service['metadata']['name']}.parallel-synth.svc:{port}/metrics" in script
    assert "parallelsynth_reconcile_duration_seconds" in script
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    kubernetes_validate.validate(pod, "1.29.0", strict=True)
    compile(script, "helm-test", "exec")


def test_every_alert_links_to_an_existing_runbook_section(render_chart) -> None:
    rule = next(o for o in render_chart("--set", "metrics.prometheusRule.enabled=true") if o["kind"] == "PrometheusRule")
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", (ROOT / "docs" / "runbooks.md").read_text(), re.M)}
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            url = alert["annotations"]["runbook_url"]
            assert url.startswith("https://") and url.split("#", 1)[0].endswith("docs/runbooks.md")
            assert url.split("#", 1)[1] == alert["alert"].lower() in headings


def test_every_dashboard_series_is_fed_by_the_operator() -> None:
    """A status with only the fields the operator writes (SynthDatasetStatus) feeds every panel."""
    status = SynthDatasetStatus.model_validate({
        "phase": "Running", "samples": {"target": 1000, "completed": 400, "failed": 0},
        "shards": {"total": 10, "completed": 4, "failed": 1},
        "categories": {"geometry": {"target": 500, "completed": 200}}, "samplesPerDay": 5000.0,
        "eta": "2026-12-01T00:00:00Z", "workers": {"desired": 3, "active": 2, "pending": 1},
        "preemptions": 2, "retries": 1, "capacityMode": "spot", "renderBusyRatio": 0.93,
        "cost": {"gpuHours": 3.0, "dollars": 2.0, "dollarsPer1kSamples": 5.0, "projectedDollars": 5.0},
    }).wire()
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    spec = {"samples": 1000, "throughput": {"targetPerDay": 6000}, "budget": {"maxDollars": 100}}
    metrics.update_from_status("synth", "ds", spec, status, now=datetime(2026, 11, 30, tzinfo=UTC))
    with metrics.time_reconcile("dataset"):
        pass
    exposed = {line.split("{")[0].split(" ")[0] for line in generate_latest(registry).decode().splitlines()
               if line and not line.startswith("#")}
    for path in sorted((CHART / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                for name in re.findall(r"\bparallelsynth_[a-z0-9_]+", target["expr"]):
                    if name == "parallelsynth_reconcile_errors_total":
                        continue  # a counter that only appears once a reconcile failed
                    assert name in exposed, f"panel {panel['title']!r}: {name} is never exposed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "renderer.imagePullSecrets[0].nam=regcred"), "nam"),
        (("--set", "renderer.networkPolicy.objectStore.ports={70000}"), "ports"),
        (("--set", "renderer.networkPolicy.objectStore.cidrs={s3.amazonaws.com}"), "cidrs"),
        (("--set", "renderer.fileOutput.mountPath=relative/path"), "mountPath"),
        (("--set", "policy.allowedImagePrefixes={a\\,b}"), "allowedImagePrefixes"),
        (("--set", "policy.requireImageDigest=maybe"), "requireImageDigest"),
        (("--set", "policy.allowedSecrets={x}"), "allowedSecrets"),
    ],
)
def test_values_schema_rejects_bad_cluster_values(helm: str, args: tuple[str, ...], message: str) -> None:
    out = run(helm, "template", "ps", str(CHART), *args, check=False)
    assert out.returncode != 0 and message in out.stderr, out.stderr
