"""The end-to-end kit (e2e/) stays runnable, although no cluster exists here to run it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from install_helpers import ROOT, load_all, run

E2E = ROOT / "e2e"


def test_run_script_is_valid_bash_and_executable() -> None:
    run("bash", "-n", str(E2E / "run.sh"))
    assert os.access(E2E / "run.sh", os.X_OK)


def test_e2e_dataset_is_a_valid_cpu_only_manifest() -> None:
    synthctl = Path(sys.executable).parent / "synthctl"
    out = run(str(synthctl), "validate-manifest", str(E2E / "dataset.yaml"), check=False)
    assert out.returncode == 0, out.stderr
    (dataset,) = load_all((E2E / "dataset.yaml").read_text())
    assert dataset["spec"]["nodePool"]["gpusPerWorker"] == 0 and dataset["spec"]["render"]["device"] == "cpu"


def test_minio_objects_fit_the_kubernetes_schemas() -> None:
    text = (E2E / "minio.yaml").read_text().replace("MINIO_IMAGE", "quay.io/minio/minio:test")
    for obj in load_all(text):
        kubernetes_validate.validate(obj, "1.31.0", strict=True)


def test_chart_renders_with_the_e2e_values(render_chart) -> None:
    objs = render_chart("-f", str(E2E / "values.yaml"))
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "ps-parallel-synth-operator"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "parallel-synth/operator:e2e"


def test_e2e_suite_skips_with_a_reason_without_a_cluster() -> None:
    env = {**os.environ, "PARALLEL_SYNTH_E2E_CONTEXT": "kind-no-such-cluster", "KUBECONFIG": os.devnull}
    out = subprocess.run([sys.executable, "-m", "pytest", str(E2E / "test_e2e.py"), "-q", "-rs", "-p", "no:cacheprovider"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "skipped" in out.stdout and "passed" not in out.stdout and "failed" not in out.stdout
    assert "'kind-no-such-cluster' is not reachable" in out.stdout


def test_e2e_suite_never_uses_the_default_kube_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARALLEL_SYNTH_E2E_CONTEXT", raising=False)
    spec = importlib.util.spec_from_file_location("e2e_suite_probe", E2E / "test_e2e.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._PROBLEM is not None and "make e2e" in module._PROBLEM
