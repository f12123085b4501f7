"""Install files that must agree with the rest of the repository: CRD copies, the image, metrics."""

from __future__ import annotations

import json
import re

import pytest
from install_helpers import CHART, MANIFESTS, ROOT, load_all

GENERATED = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
FIX = "run `make crds` (it copies crds/*.yaml into the chart and manifests/base/crds)"


@pytest.mark.parametrize("copy", [CHART / "crds", MANIFESTS / "base" / "crds"], ids=["chart", "kustomize"])
def test_crd_copies_are_identical_to_the_generated_crds(copy) -> None:
    assert GENERATED, "crds/ is empty"
    for name in GENERATED:
        assert (copy / name).is_file(), f"{copy / name} is missing: {FIX}"
        assert (copy / name).read_text() == (ROOT / "crds" / name).read_text(), f"{copy / name} drifted: {FIX}"


def test_no_stray_crds_in_the_copies() -> None:
    # The chart also installs kopf's peering CRDs, the same as manifests/optional offers.
    assert sorted(p.name for p in (CHART / "crds").glob("*.yaml")) == sorted([*GENERATED, "kopf.dev_peerings.yaml"])
    kopf = load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text())
    assert kopf == load_all((MANIFESTS / "optional" / "kopf-peering-crds.yaml").read_text())
    kustomization = load_all((MANIFESTS / "base" / "crds" / "kustomization.yaml").read_text())[0]
    assert sorted(kustomization["resources"]) == GENERATED


def test_crds_fit_in_a_client_side_apply() -> None:
    # `kubectl apply` (client-side) stores the object in an annotation limited to 256 KiB.
    for name in GENERATED:
        (crd,) = load_all((ROOT / "crds" / name).read_text())
        assert len(json.dumps(crd, separators=(",", ":"))) < 200_000, f"{name}: document server-side apply"


def _dockerfile() -> str:
    return (ROOT / "operator" / "Dockerfile").read_text()


def test_operator_image_is_python311_non_root_without_blender() -> None:
    text = _dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11", text, re.M)
    final_stage = text.rsplit("\nFROM ", 1)[1]
    user = re.search(r"^USER (\S+)", final_stage, re.M)
    assert user and user.group(1).split(":")[0] not in ("0", "root")
    instructions = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    assert "[render]" not in instructions and "bpy" not in instructions
    assert re.search(r"^EXPOSE 8080 9090$", final_stage, re.M)
    assert 'ENTRYPOINT ["synthctl"]' in final_stage
    assert "--liveness=http://0.0.0.0:8080/healthz" in final_stage and "--metrics-port=9090" in final_stage


def test_operator_image_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", _dockerfile(), re.M):
        for path in src.split():
            top = path.rstrip("/").split("/")[0]
            assert top not in ignored, f"{path} is excluded by .dockerignore"
            if path != "README.md":  # the lead's README; a build without it fails loudly anyway
                assert (ROOT / path).exists(), f"COPY {path}: no such path"
    assert {".git", ".venv", "tools"} <= set(ignored)


def _dashboards() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((CHART / "dashboards").glob("*.json"))]


def test_dashboards_are_grafana_dashboards() -> None:
    dashboards = _dashboards()
    assert dashboards
    for d in dashboards:
        assert d["title"] and d["uid"] and isinstance(d["panels"], list) and d["panels"]
        for panel in d["panels"]:
            assert panel["type"] and panel.get("gridPos")


def _metric_names_in(text: str) -> set[str]:
    return set(re.findall(r"\bparallelsynth_[a-z0-9_]+", text))


def test_alerts_and_dashboards_use_metrics_the_operator_exports() -> None:
    exported = (ROOT / "operator" / "parallel_synth" / "cluster" / "metrics.py").read_text()
    used = _metric_names_in((CHART / "templates" / "prometheusrule.yaml").read_text())
    for d in _dashboards():
        used |= _metric_names_in(json.dumps(d))
    assert used
    unknown = set()
    for name in used:
        bare = name.removeprefix("parallelsynth_")
        stems = {bare, bare.removesuffix("_total"), re.sub(r"_(bucket|sum|count)$", "", bare)}
        if not any(re.search(rf"\b{re.escape(s)}\b", exported) for s in stems):
            unknown.add(name)
    assert unknown == set(), f"not exported by parallel_synth/cluster/metrics.py: {sorted(unknown)}"
