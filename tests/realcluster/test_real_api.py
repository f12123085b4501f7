"""The CRDs on a real kube-apiserver: schema, CEL transition rules, explain, printer columns.

What KMock and our own CEL evaluator (tests/api/cel_eval.py) let us believe is checked here
against the API server itself: every manifest ``validate-manifest`` refuses for a reason the
schema can express is refused by server-side dry-run too, naming the same field; the transition
rules give the API server's verdict on the very old/new pairs ``validate-manifest --old`` is
tested on.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from localcluster import ROOT, KubectlError, LocalCluster

from synth_contract.api import SynthDataset, SynthDatasetSpec


def _load(path: Path, name: str) -> Any:
    sys.path.insert(0, str(path.parent))  # its own helpers (cel_eval, ...)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BAD = _load(ROOT / "tests" / "badinput" / "test_badinput_manifests.py", "badinput_manifests")
IMMUTABLE = _load(ROOT / "tests" / "api" / "test_immutability.py", "immutability_cases")

# validate-manifest refuses these for reasons no CRD schema can state; the API server accepts
# them and the operator refuses them (SpecValid=False). Documented decisions, each checked to
# be still accepted, so a stricter CRD shows up here.
NOT_SCHEMA: dict[str, str] = {
    "deadline-past": "depends on the time of the request; a schema rule must give the same verdict forever",
}
# Cases that are not an object a client could send to the API server (the file itself is broken).
NOT_AN_OBJECT = {"document-is-a-string", "empty-file", "yaml-syntax-error", "yaml-bomb-aliases",
                 "yaml-python-tag", "yaml-deep-nesting", "too-large-file", "invalid-utf8", "nul-bytes",
                 "spec-is-a-list", "wrong-kind-api", "image-huge-string", "uri-huge-string"}


def _dry_run(cluster: LocalCluster, ns: str, obj: dict[str, Any]) -> tuple[bool, str]:
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {}).pop("namespace", None)
    proc = cluster.run("create", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "-",
                       input_text=json.dumps(obj), check=False)
    return proc.returncode == 0, proc.stdout + proc.stderr


def test_crds_are_established_and_explained_from_the_models(crds: LocalCluster) -> None:
    out = crds.kubectl("explain", "synthdatasets.spec.samples")
    described = SynthDatasetSpec.model_fields["samples"].description
    assert described and described.split(".")[0] in " ".join(out.split())
    rb = crds.kubectl("explain", "rb.spec")
    assert "shardStart" in rb and "shardCount" in rb
    names = crds.kubectl("api-resources", "--api-group=parallelsynth.io", "-o", "name").split()
    assert sorted(names) == ["renderbatches.parallelsynth.io", "synthdatasets.parallelsynth.io"]
    assert "sds" in crds.kubectl("api-resources", "--categories=synth")


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_accepted_by_the_api_server(crds: LocalCluster, namespace: str, example: Path) -> None:
    for doc in yaml.safe_load_all(example.read_text()):
        if doc and doc.get("kind") == "SynthDataset":
            ok, out = _dry_run(crds, namespace, doc)
            assert ok, f"{example.name}: {out}"


_SCHEMA_CASES = [(i, c, e) for i, c, e in BAD.CASES if i not in NOT_AN_OBJECT]


@pytest.mark.parametrize(("content", "field"), [(c, e) for _, c, e in _SCHEMA_CASES],
                         ids=[i for i, _, _ in _SCHEMA_CASES])
def test_what_validate_manifest_refuses_the_api_server_refuses_naming_the_field(
        crds: LocalCluster, namespace: str, request: pytest.FixtureRequest, content: str, field: str) -> None:
    case = request.node.callspec.id
    obj = yaml.safe_load(content)
    ok, out = _dry_run(crds, namespace, obj)
    if case in NOT_SCHEMA:
        assert ok, f"{case} is now refused by the CRD too: drop it from NOT_SCHEMA ({out})"
        return
    assert not ok, f"the API server accepted what validate-manifest refuses ({field})"
    path = field.split(":")[0]
    assert path in out.replace(".spec.", "spec.").replace('"', ""), out


def test_bad_inputs_the_schema_cannot_state_are_listed_and_still_refused_by_validate_manifest() -> None:
    ids = {i for i, _, _ in BAD.CASES}
    assert set(NOT_SCHEMA) <= ids
    assert ids >= NOT_AN_OBJECT


def _create_started(cluster: LocalCluster, ns: str, old: dict[str, Any]) -> str:
    name = f"ds-{uuid.uuid4().hex[:8]}"
    body = IMMUTABLE._wire(old)
    status = body.pop("status", None)
    body["metadata"] = {"name": name, "namespace": ns}
    cluster.apply(body)
    if status:
        cluster.kubectl("patch", "sds", name, "-n", ns, "--subresource=status", "--type=merge",
                        "-p", json.dumps({"status": status}))
    return name


@pytest.mark.parametrize(("case", "old", "new", "refused"), IMMUTABLE.CASES, ids=[c[0] for c in IMMUTABLE.CASES])
def test_the_api_server_enforces_the_transition_rules_like_validate_manifest_old(
        crds: LocalCluster, namespace: str, case: str, old: dict[str, Any], new: dict[str, Any],
        refused: bool) -> None:
    name = _create_started(crds, namespace, old)
    live = crds.get("sds", name, "-n", namespace)
    body = IMMUTABLE._wire(new)
    body.pop("status", None)
    live["spec"] = body["spec"]
    proc = crds.run("replace", "-f", "-", input_text=json.dumps(live), check=False)
    if refused:
        assert proc.returncode != 0, f"{case}: the API server accepted the change"
        assert "spec" in proc.stderr and ("unless spec.version changes" in proc.stderr
                                          or "after the existing ones" in proc.stderr), proc.stderr
        assert "<nil>" not in proc.stderr, "the API server must name the field (fieldPath)"
    else:
        assert proc.returncode == 0, f"{case}: {proc.stderr}"


def test_status_is_a_subresource_and_kubectl_get_shows_it_at_a_glance(crds: LocalCluster, namespace: str) -> None:
    spec = SynthDataset.model_validate({"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
                                        "metadata": {"name": "glance", "namespace": namespace},
                                        "spec": {"samples": 1000, "output": {"uri": "s3://bucket/x"},
                                                 "image": "r:1"}}).wire()
    crds.apply(spec)
    status = {"phase": "Running", "progress": "42.0%", "samples": {"target": 1000, "completed": 420, "failed": 0},
              "samplesPerDay": 12345.0, "workers": {"desired": 4, "active": 3}, "eta": "2026-12-31T00:00:00Z",
              "cost": {"gpuHours": 1.5, "dollars": 0.53, "dollarsPer1kSamples": 1.26, "projectedDollars": 1.26}}
    # A spec update cannot write status (subresource): the status stays empty.
    live = crds.get("sds", "glance", "-n", namespace)
    live["status"] = status
    crds.kubectl("replace", "-f", "-", input_text=json.dumps(live))
    assert "status" not in crds.get("sds", "glance", "-n", namespace)
    crds.kubectl("patch", "sds", "glance", "-n", namespace, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": status}))
    table = crds.kubectl("get", "sds", "-n", namespace).splitlines()
    header, row = table[0].split(), table[1].split()
    for column in ("PHASE", "PROGRESS", "SAMPLES", "RATE/DAY", "WORKERS", "ETA", "COST"):
        assert column in header
    assert row[0] == "glance" and "Running" in row and "42.0%" in row and "420" in row and "12345" in row
    assert "0.53" in row and "2026-12-31T00:00:00Z" in row
    with pytest.raises(KubectlError, match=r"Unsupported value|phase"):
        crds.kubectl("patch", "sds", "glance", "-n", namespace, "--subresource=status", "--type=merge",
                     "-p", json.dumps({"status": {"phase": "Exploded"}}))


def test_kubectl_get_rb_shows_a_batch_at_a_glance(crds: LocalCluster, namespace: str) -> None:
    crds.apply({"apiVersion": "parallelsynth.io/v1alpha1", "kind": "RenderBatch",
                "metadata": {"name": "glance-b3", "namespace": namespace},
                "spec": {"dataset": "glance", "shardStart": 30, "shardCount": 10, "parallelism": 4}})
    crds.kubectl("patch", "rb", "glance-b3", "-n", namespace, "--subresource=status", "--type=merge", "-p",
                 json.dumps({"status": {"phase": "Running", "attempt": 2, "shardsDone": 7, "preemptions": 3,
                                        "job": "glance-b3-a2", "completedShards": "0-6"}}))
    table = crds.kubectl("get", "rb", "-n", namespace, "-o", "wide").splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:8] == ["NAME", "DATASET", "SHARDS", "DONE", "PHASE", "ATTEMPT", "PREEMPTIONS", "AGE"], header
    assert row[:7] == ["glance-b3", "glance", "10", "7", "Running", "2", "3"], row
    assert row[-2:] == ["30", "glance-b3-a2"], row
    # The batch is in the `synth` category with the dataset: `kubectl get synth` lists both kinds.
    assert "renderbatch.parallelsynth.io/glance-b3" in crds.kubectl("get", "synth", "-n", namespace, "-o", "name")
