"""A SynthDataset rendered end to end on the real control plane.

kube-apiserver, the real Job controller and scheduler; the operator (``synthctl operator``) runs
as the Helm chart's ServiceAccount; pods run as local processes on the pod runner's Nodes
(``podrunner.py``) and write real shards to moto's S3. What the run must show a user: the
dataset reaches ``Succeeded`` through RenderBatches and Indexed Jobs and the index Job,
``synthctl validate`` passes on the bucket, the status is true (samples, shards, workers, cost
billed at the spot price for spot nodes) and each pod ran on the capacity the spec asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from localcluster import LocalCluster
from operator_proc import OPERATOR_NS, RELEASE, helm, install_chart
from podrunner import PodRunner
from renderkit import (
    GROUP,
    OperatorHandle,
    assert_cost,
    billed_gpu_seconds,
    bucket_on,
    commits,
    dataset,
    expected_cost,
    prepare_namespace,
    render_events,
    validate,
    wait_phase,
)

pytestmark = [pytest.mark.slow]

LABEL_DATASET = f"{GROUP}/dataset"
SPOT_PRICE, ON_DEMAND_PRICE = 100.0, 300.0
"""High prices, so the cost status (rounded to cents) of a run of seconds tells spot from on-demand:
a second of GPU time costs 2.8 cents on spot, 8.3 on demand, far above the rounding."""
PRICES = {"spotPerGpuHour": SPOT_PRICE, "onDemandPerGpuHour": ON_DEMAND_PRICE}


@pytest.fixture(autouse=True, scope="module")
def _quiet_s3() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log drowns the failure


@pytest.fixture(scope="module")
def runner(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodRunner]:
    r = PodRunner(cluster.kubeconfig, tmp_path_factory.mktemp("podrunner")).start()
    try:
        yield r
    finally:
        r.stop()
        r.remove_nodes()


@pytest.fixture(scope="module")
def operator(crds: LocalCluster, runner: PodRunner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorHandle]:
    work = tmp_path_factory.mktemp("operator")
    handle = OperatorHandle(install_chart(crds, work), work)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
        helm(crds, "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout", "120s", check=False)


def _ran(runner: PodRunner, ns: str, name: str) -> list[dict[str, object]]:
    return [h for h in runner.history if h["namespace"] == ns
            and dict(h["labels"]).get(LABEL_DATASET) == name]  # type: ignore[call-overload]


def test_a_spot_dataset_renders_to_succeeded_on_spot_nodes_and_validates(
        crds: LocalCluster, operator: OperatorHandle, runner: PodRunner, namespace: str, s3_endpoint: str,
        tmp_path: Path) -> None:
    bucket = bucket_on(s3_endpoint)
    prepare_namespace(crds, namespace)
    crds.apply(dataset("spot", namespace, endpoint=s3_endpoint, bucket=bucket, spot=True, pricing=PRICES))
    # RenderBatches appear, each run by an Indexed Job the operator made and the Job controller runs.
    crds.wait("rb/spot-b0", "create", namespace=namespace, timeout=60)
    crds.wait("job/spot-b0-a1", "create", namespace=namespace, timeout=60)
    job = crds.get("job", "spot-b0-a1", "-n", namespace)
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["podFailurePolicy"]["rules"]
    st = wait_phase(crds, namespace, "spot", "Succeeded", timeout=300)

    events = render_events(runner, namespace)
    assert commits(events) == {0: 1, 1: 1, 2: 1, 3: 1}, commits(events)
    assert st["samples"]["completed"] == st["samples"]["target"] == 8, st["samples"]
    assert st["shards"] == {"total": 4, "completed": 4, "failed": 0}, st["shards"]
    assert st.get("preemptions", 0) == 0 and st.get("retries", 0) == 0, (st.get("preemptions"), st.get("retries"))
    assert st["plan"]["batches"] == 2
    assert st["index"]["phase"] == "Succeeded"
    assert st["progress"] == "100.0%"
    cost = st["cost"]
    billed = billed_gpu_seconds(runner, namespace, "spot")
    assert billed["spot"] > 0 and billed["on-demand"] == 0, billed
    assert_cost(cost, expected_cost(billed, PRICES))
    assert cost["projectedDollars"] == pytest.approx(cost["dollars"], abs=0.011), "nothing remains to render"
    assert st["workers"].get("active", 0) == 0, st["workers"]
    if st.get("eta"):
        assert datetime.fromisoformat(st["eta"].replace("Z", "+00:00")) <= datetime.now(UTC)

    ran = _ran(runner, namespace, "spot")
    render = [h for h in ran if str(h["pod"]).startswith("spot-") and "-index-" not in str(h["pod"])]
    index = [h for h in ran if "-index-" in str(h["pod"])]
    assert render and {h["node"] for h in render} == {"runner-spot-0"}, [(h["pod"], h["node"]) for h in ran]
    assert [h["node"] for h in index] == ["runner-cpu-0"], "the index Job (no GPU) runs on the CPU node"

    rc, out = validate(s3_endpoint, bucket, "spot", tmp_path)
    assert rc == 0, out


def test_spot_false_sends_every_pod_to_on_demand_nodes_billed_on_demand(
        crds: LocalCluster, operator: OperatorHandle, runner: PodRunner, namespace: str, s3_endpoint: str) -> None:
    bucket = bucket_on(s3_endpoint)
    prepare_namespace(crds, namespace)
    crds.apply(dataset("ondemand", namespace, endpoint=s3_endpoint, bucket=bucket, spot=False, shards=2,
                       shard_size=1, pricing=PRICES))
    st = wait_phase(crds, namespace, "ondemand", "Succeeded", timeout=240)
    render = [h for h in _ran(runner, namespace, "ondemand") if "-index-" not in str(h["pod"])]
    assert render and {h["node"] for h in render} == {"runner-ondemand-0"}, [(h["pod"], h["node"]) for h in render]
    billed = billed_gpu_seconds(runner, namespace, "ondemand")
    assert billed["on-demand"] > 0 and billed["spot"] == 0, billed
    assert_cost(st["cost"], expected_cost(billed, PRICES))
    assert st.get("capacityMode") == "on-demand"
