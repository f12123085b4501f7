"""Faults on the real control plane, each with the status a user must then see.

The real Job controller applies our pod failure policy to real exit codes; the node lifecycle,
taint-eviction and pod GC controllers deal with lost nodes; kopf peers through the chart's
ClusterKopfPeering. Pods run on the pod runner's Nodes (``podrunner.py``) except in the NotReady
scenario, which uses a kwok node (its pods run forever, which is all that scenario needs).

Every scenario checks the bucket side through the pod logs the runner keeps: each shard is
committed once (``shard committed`` events) and no sample is rendered twice (``sample`` events;
a sample resumed from a checkpoint is not rendered again).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from localcluster import LocalCluster
from operator_proc import OPERATOR_NS, RELEASE, helm, install_chart, start_operator
from podrunner import RUNNER_LABEL, PodRunner, RunnerNode
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
    rendered,
    status,
    validate,
    wait_phase,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from waiting import wait_for

pytestmark = [pytest.mark.slow]

LABEL_DATASET = f"{GROUP}/dataset"
LABEL_ATTEMPT = f"{GROUP}/attempt"
SPOT_NODE = "runner-spot-0"
SPOT_SHARD = 8
"""Samples a shard in the spot scenario: more than the samples in flight when SIGTERM comes."""
PRICES = {"spotPerGpuHour": 100.0, "onDemandPerGpuHour": 300.0}
"""High prices, so a run of seconds costs dollars: the cost status is checked to the cent."""
FALLBACK = {"SYNTH_SCALING_FALLBACK_MIN_PREEMPTIONS": "1", "SYNTH_SCALING_FALLBACK_PREEMPTIONS_PER_POD_HOUR": "0.001"}
"""One preemption sends new pods of a dataset with onDemandFallback to on-demand (others: off)."""


@pytest.fixture(autouse=True, scope="module")
def _quiet_s3() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


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
    handle = OperatorHandle(install_chart(crds, work), work, env=dict(FALLBACK))
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
        helm(crds, "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout", "120s", check=False)


@pytest.fixture
def ns(crds: LocalCluster, namespace: str) -> str:
    prepare_namespace(crds, namespace)
    return namespace


def _history(runner: PodRunner, ns: str, name: str) -> list[dict[str, Any]]:
    return [h for h in runner.history if h["namespace"] == ns and h["labels"].get(LABEL_DATASET) == name
            and "-index-" not in h["pod"]]


def _wait_sample(runner: PodRunner, ns: str, pod: str, *, timeout: float = 120) -> None:
    """Until ``pod`` has rendered a whole sample (it is mid-shard, with something to checkpoint)."""
    wait_for(lambda: any(e.get("event") == "sample" and e["_pod"] == pod for e in render_events(runner, ns)),
             timeout=timeout, what=f"a rendered sample in {pod}'s log")


def _running_pod(runner: PodRunner, ns: str, name: str, node: str | None = None) -> str:
    def find() -> str | None:
        return next((p.name for p in runner.running(node=node) if p.namespace == ns and p.name.startswith(name)), None)
    return str(wait_for(find, timeout=120, what=f"a running pod of {name} on {node or 'any node'}"))


def _handled(log: Path, ns: str, name: str) -> list[str]:
    """The messages of the operator's JSON log (kopf's ``--log-format=json``, ``log_refkey="object"``)
    about the SynthDataset ``ns/name`` or its RenderBatches (``name-b<i>``)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        ref = rec.get("object") or {}
        if ref.get("namespace") == ns and (ref.get("name") == name or str(ref.get("name", "")).startswith(f"{name}-b")):
            out.append(str(rec.get("message")))
    return out


def _once(runner: PodRunner, ns: str, shards: int, *, lost: str | None = None) -> None:
    """Each shard committed once, no sample rendered twice, but by ``lost``: a pod killed without
    a checkpoint (SIGKILL), whose samples its replacement renders again."""
    events = render_events(runner, ns)
    assert commits(events) == dict.fromkeys(range(shards), 1), f"commits per shard: {commits(events)}"
    twice = {k: n for k, n in rendered([e for e in events if e["_pod"] != lost]).items() if n > 1}
    assert not twice, f"samples rendered twice: {twice}"


# ------------------------------------------------------------------------------ spot node lost


def test_spot_node_shut_down_under_a_running_pod_is_a_preemption_resumed_from_its_checkpoint(
        crds: LocalCluster, operator: OperatorHandle, runner: PodRunner, ns: str, s3_endpoint: str,
        tmp_path: Path) -> None:
    """GKE reclaims a spot VM: the kubelet's graceful node shutdown (DisruptionTarget,
    SIGTERM), then the Node is deleted and a new spot VM joins. The worker checkpoints, the Job
    controller ignores the failure (pod failure policy), the replacement resumes; the operator
    counts a preemption, no retry, and (onDemandFallback) sends the next batch to on-demand."""
    bucket = bucket_on(s3_endpoint)
    # 8 samples a shard: the worker keeps pipeline.DEPTH (3) samples in flight and, stopped, finishes
    # them; a shard of 3 was then complete and committed (exit 0) before the node went away.
    crds.apply(dataset("spot", ns, endpoint=s3_endpoint, bucket=bucket, shards=2, shard_size=SPOT_SHARD, workers=1,
                       per_batch=1, fallback=True, pricing=PRICES))
    victim = _running_pod(runner, ns, "spot-b0", SPOT_NODE)
    _wait_sample(runner, ns, victim)
    assert runner.shutdown_node(SPOT_NODE, grace=20) == [victim]
    wait_for(lambda: (victim, 143) in runner.exits, timeout=60, what=f"{victim} exiting 143 after its checkpoint")
    crds.kubectl("delete", "node", SPOT_NODE, "--wait=true", "--timeout=60s")
    runner.register(RunnerNode(SPOT_NODE, "gpu-spot", spot=True))  # a fresh spot VM joins

    st = wait_phase(crds, ns, "spot", "Succeeded", timeout=300)
    assert st["preemptions"] == 1, st
    assert st.get("retries", 0) == 0, f"a preemption burned a retry: {st.get('retries')}"
    events = render_events(runner, ns)
    resumed = [e for e in events if e.get("event") == "checkpoint resumed" and e["shard"] == 0]
    assert resumed and resumed[0]["samples"] >= 1, "the replacement pod did not resume from the checkpoint"
    _once(runner, ns, 2)
    # onDemandFallback: the preemption sent the next batch's pods to on-demand.
    assert st.get("capacityMode") == "on-demand", st.get("capacityMode")
    b1 = [h for h in _history(runner, ns, "spot") if h["pod"].startswith("spot-b1")]
    assert b1 and {h["node"] for h in b1} == {"runner-ondemand-0"}, [(h["pod"], h["node"]) for h in b1]
    # The preempted pod's GPU time is billed too (at spot), though the pod GC removed it with its node.
    billed = billed_gpu_seconds(runner, ns, "spot")
    assert billed["spot"] > 0 and billed["on-demand"] > 0, billed
    assert_cost(st["cost"], expected_cost(billed, PRICES))
    rc, out = validate(s3_endpoint, bucket, "spot", tmp_path)
    assert rc == 0, out


# ------------------------------------------------------------------------------ exit codes


def test_a_pod_exiting_2_fails_the_job_at_once_and_the_dataset_says_bad_configuration(
        crds: LocalCluster, operator: OperatorHandle, runner: PodRunner, ns: str, s3_endpoint: str) -> None:
    """An asset bucket that does not exist: the worker's preflight exits 2 (bad configuration);
    the pod failure policy's FailJob ends the Job without retries and the batch fails for good."""
    bucket = bucket_on(s3_endpoint)
    crds.apply(dataset("bad", ns, endpoint=s3_endpoint, bucket=bucket, shards=2, shard_size=1, workers=2,
                       per_batch=2, assets={"environments": [{"uri": f"s3://{bucket}-missing/hdri/"}]}))
    # The Job and the RenderBatch as they were when they failed: the dataset folds a finished
    # batch and deletes it (and its Job) within a tick, so reading them afterwards is a race.
    crds.wait("rb/bad-b0", "create", namespace=ns, timeout=60)
    with ThreadPoolExecutor(1) as pool:
        rb_failed = pool.submit(crds.wait_object, "rb/bad-b0", "jsonpath={.status.phase}=Failed", namespace=ns,
                                timeout=180)
        crds.wait("job/bad-b0-a1", "create", namespace=ns, timeout=60)
        job = crds.wait_object("job/bad-b0-a1", "condition=Failed", namespace=ns, timeout=180)
        rb = rb_failed.result()["status"]
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy", failed
    codes = [code for pod, code in runner.exits if pod.startswith("bad-b0")]
    assert codes and set(codes) <= {2, 143}, codes  # FailJob terminates the other index's pod too
    assert rb["attempt"] == 1 and "code 2" in json.dumps(rb), rb
    crds.wait("sds/bad", "jsonpath={.status.shards.failed}=2", namespace=ns, timeout=60)
    st = status(crds, ns, "bad")
    assert st["shards"]["failed"] == 2 and st.get("failedShards") == "0-1", st
    assert st.get("retries", 0) == 0 and st.get("preemptions", 0) == 0, (st, job["status"], rb)


def test_a_pod_killed_with_sigkill_is_retried_and_its_index_re_run(
        crds: LocalCluster, operator: OperatorHandle, runner: PodRunner, ns: str, s3_endpoint: str) -> None:
    bucket = bucket_on(s3_endpoint)
    crds.apply(dataset("kill", ns, endpoint=s3_endpoint, bucket=bucket, shards=2, shard_size=2, workers=2,
                       per_batch=2, pricing=PRICES))
    victim = _running_pod(runner, ns, "kill-b0-a1-0")
    assert runner.kill(victim, signal.SIGKILL)
    st = wait_phase(crds, ns, "kill", "Succeeded", timeout=300)
    assert (victim, 137) in runner.exits
    index0 = [h["pod"] for h in _history(runner, ns, "kill") if h["pod"].startswith("kill-b0-a1-0-")]
    assert len(index0) == 2, f"index 0 ran {index0}: the Job controller re-runs a failed index"
    assert st["retries"] == 1, st
    assert st.get("preemptions", 0) == 0, st
    _once(runner, ns, 2, lost=victim)
    assert_cost(st["cost"], expected_cost(billed_gpu_seconds(runner, ns, "kill"), PRICES))  # the killed pod's too


# ------------------------------------------------------------------------------ the operator


def test_the_operator_killed_mid_run_and_restarted_completes_without_rendering_twice(
        crds: LocalCluster, operator: OperatorHandle, runner: PodRunner, ns: str, s3_endpoint: str) -> None:
    bucket = bucket_on(s3_endpoint)
    crds.apply(dataset("restart", ns, endpoint=s3_endpoint, bucket=bucket, shards=3, shard_size=2, workers=2,
                       per_batch=1))
    pod = _running_pod(runner, ns, "restart-b")
    _wait_sample(runner, ns, pod)
    assert operator.kill() == -signal.SIGKILL
    wait_for(lambda: commits(render_events(runner, ns)), timeout=120, what="a shard committed while no operator ran")
    operator.start()
    st = wait_phase(crds, ns, "restart", "Succeeded", timeout=300)
    assert st["shards"] == {"total": 3, "completed": 3, "failed": 0}, st["shards"]
    assert st.get("retries", 0) == 0 and st.get("preemptions", 0) == 0, st
    _once(runner, ns, 3)
    attempts = {h["labels"].get(LABEL_ATTEMPT) for h in _history(runner, ns, "restart")}
    assert attempts == {"1"}, f"a batch got a second Job after the restart: attempts {attempts}"
    assert st["plan"]["batches"] == 3


def test_two_operator_replicas_with_peering_only_one_acts(
        crds: LocalCluster, operator: OperatorHandle, runner: PodRunner, ns: str, s3_endpoint: str,
        tmp_path: Path) -> None:
    operator.stop()  # the module's standalone operator would act beside the peers
    peers = []
    try:
        for prio in (10, 20):
            peers.append(start_operator(operator.install, tmp_path / f"peer-{prio}.log", "-A", f"--priority={prio}",
                                        "--verbose", env=dict(FALLBACK)))
        low, high = peers
        wait_for(lambda: "Pausing operations in favour of" in low.logs(), timeout=60,
                 what="the priority-10 replica pausing in favour of the priority-20 one")
        bucket = bucket_on(s3_endpoint)
        crds.apply(dataset("peer", ns, endpoint=s3_endpoint, bucket=bucket, shards=1, shard_size=1, workers=1))
        wait_phase(crds, ns, "peer", "Succeeded", timeout=240)
        assert _handled(high.log, ns, "peer"), "the active replica never handled the dataset"
        assert not _handled(low.log, ns, "peer"), "the standby replica acted too"
        assert "Pausing all operators" not in high.logs(tail=100000) + low.logs(tail=100000)
        created = [e for e in json.loads(crds.kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
                   if e.get("involvedObject", {}).get("kind") == "SynthDataset" and e.get("reason") == "BatchCreated"]
        assert sum(e.get("count", 1) or 1 for e in created) <= 1, created
        _once(runner, ns, 1)
    finally:
        for p in peers:
            p.stop()
        operator.start()


# ------------------------------------------------------------------------------ a node NotReady


def test_a_node_going_not_ready_gets_its_pods_evicted_counted_as_preemptions_not_retries(
        crds: LocalCluster, operator: OperatorHandle, runner: PodRunner, ns: str, s3_endpoint: str) -> None:
    """A spot node hangs (its VM frozen: no heartbeat, no Lease renewal, its pods' processes
    stopped). The node lifecycle controller marks it ``Unknown`` and taints it ``unreachable``
    after ``--node-monitor-grace-period`` (20 s in local-cluster.sh), the taint-eviction
    controller evicts its pod after its toleration (5 s here): ``DisruptionTarget``, a deletion
    nobody acknowledges. The operator counts the preemption then. Once the admin marks the node
    shut down (the ``out-of-service`` taint of non-graceful node shutdown), the pod GC controller
    fails and removes the pod, and the Job controller replaces it on another node (the pod
    failure policy ignores a disruption). The dataset succeeds with one preemption and no retry.

    Its pod never acknowledges anything, so the Job does not replace it before the pod GC acts
    (``podReplacementPolicy: Failed``, which a pod failure policy requires)."""
    hung = RunnerNode("runner-hung-0", "gpu-spot", spot=True)
    runner.register(hung)
    bucket = bucket_on(s3_endpoint)
    tol = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
           for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")]
    crds.kubectl("cordon", SPOT_NODE)  # the first pod goes to the node that will hang
    try:
        crds.apply(dataset("lost", ns, endpoint=s3_endpoint, bucket=bucket, shards=1, shard_size=2, workers=1,
                           nodePool={"gpusPerWorker": 1, "cpu": "1", "memory": "1Gi", "spot": True,
                                     "onDemandFallback": False, "nodeSelector": {RUNNER_LABEL: "true"},
                                     "tolerations": tol}))
        first = _running_pod(runner, ns, "lost-b0", hung.name)
    finally:
        crds.kubectl("uncordon", SPOT_NODE)
    try:
        assert runner.freeze_node(hung.name) == [first]
        crds.wait(f"node/{hung.name}", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}=Unknown', timeout=90)
        # Evicted: DisruptionTarget first, then the deletion (which nobody acknowledges).
        evicted = crds.wait_object(f"pod/{first}", "jsonpath={.metadata.deletionTimestamp}", namespace=ns,
                                   timeout=60)
        target = next(c for c in evicted["status"]["conditions"] if c["type"] == "DisruptionTarget")
        assert target["status"] == "True" and target["reason"] == "DeletionByTaintManager", target
        crds.wait("sds/lost", "jsonpath={.status.preemptions}=1", namespace=ns, timeout=60)
        # The node is really down: its VM ends, the admin says so, the pod GC takes the pod.
        runner.lose_node(hung.name)
        crds.kubectl("taint", "node", hung.name, "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute")
        crds.wait(f"pod/{first}", "delete", namespace=ns, timeout=90)
        st = wait_phase(crds, ns, "lost", "Succeeded", timeout=180)
    finally:
        crds.run("delete", "node", hung.name, "--wait=false", check=False)
    assert st["preemptions"] == 1, st
    assert st.get("retries", 0) == 0, f"a lost node burned a retry: {st.get('retries')}"
    ran = _history(runner, ns, "lost")
    assert [h["node"] for h in ran] == [hung.name, SPOT_NODE], [(h["pod"], h["node"]) for h in ran]
    assert commits(render_events(runner, ns)) == {0: 1}
