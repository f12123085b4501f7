"""The install files render, pass `helm lint`, and every object fits the Kubernetes API schema.

Objects of built-in kinds are checked with kubernetes-validate (the API's OpenAPI schemas as
JSON Schema, shipped in the wheel, strict: unknown fields fail) for the oldest and newest
Kubernetes we support. Objects of custom kinds are checked against their CRDs.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from crd_schema import openapi_to_jsonschema
from install_helpers import CHART, MANIFESTS, ROOT, load_all, run

VALUES = Path(__file__).parent / "values"
KUBE_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]  # 1.29: the chart's kubeVersion
CHART_VARIANTS = {
    "default": (),
    "namespaced": ("-f", str(VALUES / "namespaced.yaml")),
    "full": ("-f", str(VALUES / "full.yaml")),
}
KUSTOMIZE_VARIANTS = ["", "overlays/namespaced"]
# Kinds whose schema is not in Kubernetes itself (prometheus-operator): checked by shape below.
PROMETHEUS_KINDS = {"ServiceMonitor", "PrometheusRule"}


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every CRD the chart installs."""
    schemas = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for crd in load_all(path.read_text()):
            for version in crd["spec"]["versions"]:
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                schemas[key] = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
    return schemas


_VALID: set[tuple[str, str]] = set()  # (object as JSON, version) already validated: CRDs repeat


def _validate(obj: dict[str, Any], version: str) -> None:
    if obj["kind"] in PROMETHEUS_KINDS:
        return
    key = (obj["apiVersion"], obj["kind"])
    crds = _crd_schemas()
    if key in crds:
        jsonschema.validate(obj, crds[key])
        return
    seen = (json.dumps(obj, sort_keys=True), version)
    if seen not in _VALID:
        kubernetes_validate.validate(obj, version, strict=True)
        _VALID.add(seen)


def test_helm_lint_passes_default_and_strict(helm: str) -> None:
    out = run(helm, "lint", "--strict", str(CHART), check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    for args in CHART_VARIANTS.values():
        out = run(helm, "lint", str(CHART), *args, check=False)
        assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("variant", sorted(CHART_VARIANTS))
@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_chart_objects_fit_the_kubernetes_schemas(render_chart, variant: str, version: str) -> None:
    objs = render_chart("--include-crds", *CHART_VARIANTS[variant])
    assert {o["kind"] for o in objs} >= {"Deployment", "ServiceAccount", "ClusterRole", "CustomResourceDefinition"}
    for obj in objs:
        _validate(obj, version)


@pytest.mark.parametrize("path", KUSTOMIZE_VARIANTS)
@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_kustomize_objects_fit_the_kubernetes_schemas(render_kustomize, path: str, version: str) -> None:
    objs = render_kustomize(path)
    assert {o["kind"] for o in objs} >= {"Namespace", "CustomResourceDefinition", "Deployment", "Service"}
    for obj in objs:
        _validate(obj, version)


def test_the_validator_catches_a_typo(render_kustomize) -> None:
    deployment = next(o for o in render_kustomize("") if o["kind"] == "Deployment")
    bad = yaml.safe_load(yaml.safe_dump(deployment))
    bad["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = bad["spec"]["template"]["spec"][
        "containers"][0].pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[0], strict=True)


def test_optional_kopf_peering_files_fit(kubectl: str) -> None:
    crds = load_all((MANIFESTS / "optional" / "kopf-peering-crds.yaml").read_text())
    for crd in crds:
        kubernetes_validate.validate(crd, KUBE_VERSIONS[0], strict=True)
    schemas = _crd_schemas()
    for obj in load_all((MANIFESTS / "optional" / "kopf-peering.yaml").read_text()):
        jsonschema.validate(obj, schemas[(obj["apiVersion"], obj["kind"])])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "operator.replicas=-1"), "replicas"),
        (("--set", "operator.watchNamespaces[0]=Not_A_Namespace"), "watchNamespaces"),
        (("--set", "operatr.replicas=2"), "operatr"),
        (("--set", "metrics.prometheusRule.budgetFraction=1.5"), "budgetFraction"),
        (("--set", "image.pullPolicy=Sometimes"), "pullPolicy"),
    ],
)
def test_values_schema_rejects_bad_values(helm: str, args: tuple[str, ...], message: str) -> None:
    out = run(helm, "template", "ps", str(CHART), *args, check=False)
    assert out.returncode != 0
    assert message in out.stderr


def test_chart_values_schema_is_valid_json_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)
    for path in VALUES.glob("*.yaml"):
        merged = yaml.safe_load((CHART / "values.yaml").read_text())
        merged.update(yaml.safe_load(path.read_text()))
        jsonschema.validate(merged, schema)


def test_non_default_values_reach_the_objects(render_chart) -> None:
    objs = render_chart(*CHART_VARIANTS["full"])
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["metadata"]["name"] == "synth-op-operator"
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "registry.example.com/ml/parallel-synth-operator:0.2.0-rc1"
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert "--namespace=synth" in container["args"] and "--all-namespaces" not in container["args"]
    assert "--liveness=http://0.0.0.0:18080/healthz" in container["args"]
    assert "--metrics-port=19090" in container["args"] and "--verbose" in container["args"]
    assert {"name": "SYNTH_OPERATOR_DATASET_INTERVAL", "value": "30"} in container["env"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert [(o["kind"], o["metadata"]["name"]) for o in objs if "KopfPeering" in o["kind"]] == [("KopfPeering", "synth-op")]
    dashboards = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboards"))
    assert dashboards["metadata"]["namespace"] == "monitoring"
    renderer_namespaces = {
        o["metadata"]["namespace"] for o in objs
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "parallel-synth-renderer"
    }
    assert renderer_namespaces == {"parallel-synth", "synth", "batch-jobs"}


@pytest.mark.parametrize("source", ["kustomize", "chart"])
def test_operator_deployment_is_locked_down_and_probed(render_kustomize, render_chart, source: str) -> None:
    objs = render_kustomize("") if source == "kustomize" else render_chart()
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f"--liveness=http://0.0.0.0:{ports['health']}/healthz" in container["args"]
    assert f"--metrics-port={ports['metrics']}" in container["args"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["args"][0] == "operator"
    service = next(o for o in objs if o["kind"] == "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


def test_prometheus_objects_have_the_expected_shape(render_chart) -> None:
    objs = render_chart(*CHART_VARIANTS["full"])
    monitor = next(o for o in objs if o["kind"] == "ServiceMonitor")
    service = next(o for o in objs if o["kind"] == "Service")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    assert all(service["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rule = next(o for o in objs if o["kind"] == "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "ParallelSynthThroughputBelowTarget",
        "ParallelSynthBudgetNearlySpent",
        "ParallelSynthShardFailureRate",
        "ParallelSynthOperatorDown",
    }
    for alert in alerts.values():
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["labels"]["team"] == "ml-platform"
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert alert["expr"].count("(") == alert["expr"].count(")")
    assert "0.7 * parallelsynth_target_samples_per_day" in alerts["ParallelSynthThroughputBelowTarget"]["expr"]
    assert "0.95 * parallelsynth_budget_dollars" in alerts["ParallelSynthBudgetNearlySpent"]["expr"]
    assert f'job="{service["metadata"]["name"]}"' in alerts["ParallelSynthOperatorDown"]["expr"]


PEERING_INSTALLS = {
    "kustomize": ("kustomize", ""),
    "kustomize-namespaced": ("kustomize", "overlays/namespaced"),
    **{f"chart-{k}": ("chart", k) for k in CHART_VARIANTS},
    "chart-no-peering": ("chart", "no-peering"),
}


@pytest.mark.parametrize("install", sorted(PEERING_INSTALLS))
def test_operator_is_never_paused_waiting_for_a_peering_object(render_kustomize, render_chart, install: str) -> None:
    # `synthctl operator` peers under --peering (default "parallel-synth") unless --standalone;
    # kopf pauses every handler until that peering object exists.
    source, variant = PEERING_INSTALLS[install]
    if source == "kustomize":
        objs = render_kustomize(variant)
    elif variant == "no-peering":
        objs = render_chart("--include-crds", "--set", "peering.enabled=false")
    else:
        objs = render_chart("--include-crds", *CHART_VARIANTS[variant])
    args = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    if "--standalone" in args:
        assert next(o for o in objs if o["kind"] == "Deployment")["spec"]["replicas"] == 1
        return
    name = next((a.split("=", 1)[1] for a in args if a.startswith("--peering=")), "parallel-synth")
    served = [a.split("=", 1)[1] for a in args if a.startswith("--namespace=")]
    crds = {o["metadata"]["name"] for o in objs if o["kind"] == "CustomResourceDefinition"}
    peerings = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs if "KopfPeering" in o["kind"]}
    if served:
        assert "kopfpeerings.kopf.dev" in crds
        assert {("KopfPeering", ns, name) for ns in served} <= peerings
    else:
        assert "clusterkopfpeerings.kopf.dev" in crds
        assert ("ClusterKopfPeering", None, name) in peerings


def test_chart_refuses_replicas_without_peering(helm: str) -> None:
    out = run(helm, "template", "ps", str(CHART), "--set", "peering.enabled=false", "--set", "operator.replicas=2",
              check=False)
    assert out.returncode != 0 and "needs peering.enabled" in out.stderr


def test_chart_notes_tell_how_to_start(helm: str) -> None:
    out = run(helm, "install", "ps", str(CHART), "--dry-run=client", "--namespace", "parallel-synth")
    notes = out.stdout.split("NOTES:", 1)[1]
    assert "kubectl get sds" in notes and "rollout status deploy/ps-parallel-synth-operator" in notes
    out = run(helm, "install", "ps", str(CHART), "--dry-run=client", "-f", str(VALUES / "namespaced.yaml"))
    assert "serves these namespaces only: synth, team-b" in out.stdout


def test_examples_fit_the_installed_crds() -> None:
    schemas = _crd_schemas()
    checked = []
    for path in sorted([*(ROOT / "examples").rglob("*.yaml"), ROOT / "e2e" / "dataset.yaml"]):
        for obj in load_all(path.read_text()):
            key = (obj.get("apiVersion"), obj.get("kind"))
            if key in schemas:
                jsonschema.validate(obj, schemas[key], format_checker=jsonschema.FormatChecker())
                checked.append(path.name)
    assert {"quickstart.yaml", "dataset.yaml"} <= set(checked)
