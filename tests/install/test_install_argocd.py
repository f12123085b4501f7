"""The ArgoCD health checks: what ArgoCD shows for a SynthDataset (and a RenderBatch) in each state.

ArgoCD runs health checks in gopher-lua (Lua 5.1) with the live object as the global `obj`;
the script returns {status, message}. We run the same script in Lua 5.1 through lupa.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import manifest
from install_helpers import CHART, ROOT, load_all

lupa = pytest.importorskip("lupa.lua51", reason="pip install lupa (in the dev extra)")

CUSTOMIZATIONS = CHART / "files" / "resource_customizations" / "parallelsynth.io"
KINDS = ("SynthDataset", "RenderBatch")
SCRIPT = (CUSTOMIZATIONS / "SynthDataset" / "health.lua").read_text()
KEY = "resource.customizations.health.parallelsynth.io_SynthDataset"
KEYS = {kind: f"resource.customizations.health.parallelsynth.io_{kind}" for kind in KINDS}
SCRIPTS = {kind: (CUSTOMIZATIONS / kind / "health.lua").read_text() for kind in KINDS}


def health(obj: dict[str, Any], script: str = SCRIPT) -> dict[str, str]:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return {"status": result["status"], "message": result["message"]}


def _argocd_cases() -> list[Any]:
    """Every case of argo-cd's health_test.yaml, for both kinds (the files argo-cd's own test reads)."""
    cases = []
    for kind in KINDS:
        spec = yaml.safe_load((CUSTOMIZATIONS / kind / "health_test.yaml").read_text())
        for case in spec["tests"]:
            cases.append(pytest.param(kind, case, id=f"{kind}-{Path(case['inputPath']).stem}"))
    return cases


@pytest.mark.parametrize(("kind", "case"), _argocd_cases())
def test_argocd_health_test_fixtures(kind: str, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CUSTOMIZATIONS / kind / case["inputPath"]).read_text())
    assert obj["kind"] == kind and obj["apiVersion"] == "parallelsynth.io/v1alpha1"
    assert health(obj, SCRIPTS[kind]) == case["healthStatus"]


def test_argocd_layout_is_complete() -> None:
    for kind in KINDS:
        folder = CUSTOMIZATIONS / kind
        listed = {case["inputPath"] for case in yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]}
        on_disk = {f"testdata/{p.name}" for p in (folder / "testdata").glob("*.yaml")}
        assert listed == on_disk, "every testdata file is a case, every case has its file"
        statuses = {case["healthStatus"]["status"] for case in
                    yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]}
        assert {"Healthy", "Progressing", "Degraded", "Suspended"} <= statuses
        deleting = [yaml.safe_load((folder / p).read_text()) for p in listed]
        assert any(o["metadata"].get("deletionTimestamp") for o in deleting), f"{kind}: no deleting object"


def dataset(status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    """The object ArgoCD sees: ``status`` as the operator wrote it for this generation."""
    return manifest({"samples": 1000}, name="phase1", namespace="synth", generation=generation,
                    status=None if status is None else {"observedGeneration": generation, **status})


def cond(ctype: str, status: str, message: str = "", reason: str = "R") -> dict[str, str]:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


RUNNING = {"phase": "Running", "samples": {"target": 1000, "completed": 420, "failed": 0},
           "progress": "42.0%", "eta": "2026-12-01T00:00:00Z",
           "conditions": [cond("SpecValid", "True"), cond("Progressing", "True")]}


@pytest.mark.parametrize(
    ("status", "expected", "in_message"),
    [
        (None, "Progressing", "Waiting for the parallel-synth operator"),
        ({}, "Progressing", "Waiting"),
        ({"phase": "Pending"}, "Progressing", "Pending"),
        (RUNNING, "Progressing", "420/1000 samples (42.0%), ETA 2026-12-01T00:00:00Z"),
        ({**RUNNING, "phase": "Succeeded", "samples": {"target": 1000, "completed": 1000}}, "Healthy", "1000/1000"),
        ({**RUNNING, "phase": "Suspended"}, "Suspended", "420/1000"),
        ({**RUNNING, "phase": "Failed", "conditions": [cond("Degraded", "True", "12 shards failed for good")]},
         "Degraded", "Failed: 12 shards failed for good"),
        ({**RUNNING, "phase": "Degraded", "conditions": []}, "Degraded", "Degraded: 420/1000"),
        ({**RUNNING, "phase": "Degraded",
          "conditions": [cond("BudgetExceeded", "True", "spent $61,000 of $60,000")]},
         "Degraded", "spent $61,000 of $60,000"),
        ({**RUNNING, "conditions": [cond("SpecValid", "False", "spec.workers: min must be <= max")]},
         "Degraded", "Invalid spec: spec.workers: min must be <= max"),
        ({"phase": "Succeeded", "conditions": [cond("SpecValid", "False", "bad")]}, "Degraded", "bad"),
    ],
)
def test_health_follows_the_dataset_status(status: dict[str, Any] | None, expected: str, in_message: str) -> None:
    result = health(dataset(status))
    assert result["status"] == expected
    assert in_message in result["message"]


def test_status_older_than_the_spec_is_progressing() -> None:
    obj = dataset({**RUNNING, "phase": "Succeeded"}, generation=3)
    obj["status"]["observedGeneration"] = 2
    assert health(obj) == {"status": "Progressing", "message": "Waiting for the operator to observe generation 3"}


def test_numbers_as_argocd_passes_them() -> None:
    # ArgoCD converts JSON to Lua with every number a float.
    status = {**RUNNING, "observedGeneration": 1.0, "samples": {"target": 1000.0, "completed": 420.0}}
    assert "420/1000 samples" in health(dataset(status))["message"]


def test_chart_configmap_carries_the_script(render_chart) -> None:
    objs = render_chart("--set", "argocd.healthCheck.enabled=true")
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and KEY in o.get("data", {}))
    assert cm["metadata"]["namespace"] == "argocd"
    for kind in KINDS:
        assert cm["data"][KEYS[kind]].strip() == SCRIPTS[kind].strip()
    own = render_chart("--set", "argocd.healthCheck.enabled=true", "--set", "argocd.healthCheck.configMapName=argocd-cm")
    cm = next(o for o in own if o["kind"] == "ConfigMap" and KEY in o.get("data", {}))
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"
    assert not [o for o in render_chart() if o["kind"] == "ConfigMap" and KEY in o.get("data", {})]


def test_docs_show_the_same_script() -> None:
    docs = (ROOT / "docs" / "argocd.md").read_text()
    for kind in KINDS:
        assert KEYS[kind] in docs
        assert SCRIPTS[kind].strip() in docs, f"docs/argocd.md must quote {kind}/health.lua verbatim"


def test_application_example_points_at_real_paths() -> None:
    apps = load_all((ROOT / "examples" / "argocd" / "application.yaml").read_text())
    assert apps
    for app in apps:
        assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
        sources = app["spec"].get("sources") or [app["spec"]["source"]]
        for src in sources:
            if "path" in src:
                assert (ROOT / src["path"]).is_dir(), src["path"]
        assert app["spec"]["destination"]["namespace"]


def test_argocd_cm_patch_example_is_the_script() -> None:
    patch = yaml.safe_load((ROOT / "examples" / "argocd" / "argocd-cm-patch.yaml").read_text())
    assert patch["metadata"]["name"] == "argocd-cm"
    for kind in KINDS:
        assert patch["data"][KEYS[kind]].strip() == SCRIPTS[kind].strip()
