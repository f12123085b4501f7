"""spec.queue on a real control plane with Kueue's own manager (not our emulation of it).

A ClusterQueue with less GPU quota than ``workers.max`` and a LocalQueue; the operator (as the
chart's ServiceAccount) creates its Jobs suspended with the queue label; Kueue's controller
admits them (partially: the quota is short), the Job controller creates pods, the scheduler
binds them to kwok GPU nodes. Then a higher-priority workload takes the quota: Kueue evicts
ours, which the operator must count as a preemption, never as a retry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from localcluster import LocalCluster
from operator_proc import Install, Operator, helm, install_chart, start_operator
from waiting import wait_for

GPU_QUOTA = 2


def _queue_objects(ns: str) -> list[dict[str, Any]]:
    cq = f"cq-{ns}"
    return [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": f"gpu-{ns}"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": cq},
         "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                  "preemption": {"withinClusterQueue": "LowerPriority"},
                  # Our render pods request ephemeral-storage (scratch): a ClusterQueue that does not
                  # cover it never admits them ("resource ephemeral-storage unavailable in
                  # ClusterQueue", found here; our Kueue emulation had admitted them).
                  "resourceGroups": [{"coveredResources": ["cpu", "memory", "ephemeral-storage", "nvidia.com/gpu"],
                                      "flavors": [{"name": f"gpu-{ns}", "resources": [
                                          {"name": "cpu", "nominalQuota": 64},
                                          {"name": "memory", "nominalQuota": "256Gi"},
                                          {"name": "ephemeral-storage", "nominalQuota": "2Ti"},
                                          {"name": "nvidia.com/gpu", "nominalQuota": GPU_QUOTA}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": {"name": "gpus", "namespace": ns},
         "spec": {"clusterQueue": cq}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "WorkloadPriorityClass", "metadata": {"name": f"urgent-{ns}"},
         "value": 10000, "description": "a team's urgent training run"},
    ]


def _dataset(ns: str, endpoint: str) -> dict[str, Any]:
    return {
        "apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
        "metadata": {"name": "queued", "namespace": ns},
        "spec": {
            "samples": 64, "shardSize": 2, "seed": 7,
            "output": {"uri": "s3://queued-bucket/data", "endpointUrl": endpoint},
            "image": "ghcr.io/parallel-synth/renderer:test",
            "queue": "gpus",
            "workers": {"min": 1, "max": 4},
            "throughput": {"targetPerDay": 10_000_000},
            "nodePool": {"gpusPerWorker": 1, "cpu": "1", "memory": "1Gi", "spot": True},
            "render": {"resolutions": [{"width": 64, "height": 64}], "samples": {"min": 4, "max": 8}},
        },
    }


@pytest.fixture(scope="module")
def install(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(Path(__file__).parents[2] / "crds"))
    inst = install_chart(cluster, tmp_path_factory.mktemp("kueue-op"))
    yield inst
    helm(cluster, "uninstall", "ps", "-n", inst.namespace, "--wait", check=False)


@pytest.fixture
def operator(install: Install, tmp_path: Path) -> Iterator[Operator]:
    op = start_operator(install, tmp_path / "operator.log", "-A", "--standalone")
    yield op
    op.stop()


def _status(cluster: LocalCluster, ns: str) -> dict[str, Any]:
    return dict(cluster.get("sds", "queued", "-n", ns).get("status") or {})


def _jobs(cluster: LocalCluster, ns: str) -> list[dict[str, Any]]:
    return list(cluster.get("jobs", "-n", ns, "-l", "parallelsynth.io/dataset=queued")["items"])


def test_kueue_admits_our_suspended_jobs_within_quota_and_an_eviction_is_a_preemption(
        cluster: LocalCluster, namespace: str, operator: Operator, s3_endpoint: str) -> None:
    cluster.kubectl("create", "serviceaccount", "parallel-synth-renderer", "-n", namespace)
    cluster.apply(_queue_objects(namespace))
    cluster.apply(_dataset(namespace, s3_endpoint))

    # The operator's Jobs carry the queue label and were created suspended; Kueue's own webhook
    # and controller took them over (a Workload per Job).
    jobs = wait_for(lambda: _jobs(cluster, namespace), timeout=60, what="the operator's first Job", proc=operator.proc)
    assert all(j["metadata"]["labels"].get("kueue.x-k8s.io/queue-name") == "gpus" for j in jobs)
    workloads = wait_for(lambda: cluster.get("workloads", "-n", namespace)["items"], timeout=60,
                         what="Kueue's Workload for our Job")
    assert workloads[0]["spec"]["queueName"] == "gpus"

    # Admitted within the quota: at most GPU_QUOTA pods run, the rest waits; status follows Kueue.
    def admitted() -> dict[str, Any] | None:
        st = _status(cluster, namespace)
        w = st.get("workers") or {}
        return st if (w.get("admitted") or 0) >= 1 else None

    st = wait_for(admitted, timeout=90, what="status.workers.admitted from Kueue's admission", proc=operator.proc)
    running = [p for p in cluster.get("pods", "-n", namespace)["items"] if p["status"].get("phase") == "Running"]
    assert 1 <= len(running) <= GPU_QUOTA
    assert st["workers"]["admitted"] <= GPU_QUOTA
    cond = {c["type"]: c for c in st.get("conditions", [])}
    assert "Admitted" in cond, st.get("conditions")
    assert all(p["spec"]["nodeName"].startswith("gpu-") for p in running), "pods must land on the GPU pools"
    assert st.get("retries", 0) == 0

    # A higher-priority workload in the same ClusterQueue needs the whole quota: Kueue evicts ours.
    urgent = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "urgent-train", "namespace": namespace,
                     "labels": {"kueue.x-k8s.io/queue-name": "gpus",
                                "kueue.x-k8s.io/priority-class": f"urgent-{namespace}"}},
        "spec": {"suspend": True, "parallelism": GPU_QUOTA, "completions": GPU_QUOTA,
                 "template": {"spec": {
                     "restartPolicy": "Never",
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"},
                                     {"key": "cloud.google.com/gke-spot", "operator": "Exists"}],
                     "containers": [{"name": "train", "image": "trainer:1",
                                     "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                                   "limits": {"nvidia.com/gpu": "1", "memory": "1Gi"}}}]}}},
    }
    cluster.apply(urgent)
    cluster.wait("job/urgent-train", "jsonpath={.spec.suspend}=false", namespace=namespace, timeout=90)

    def preempted() -> dict[str, Any] | None:
        s = _status(cluster, namespace)
        return s if (s.get("preemptions") or 0) >= 1 else None

    st = wait_for(preempted, timeout=90, what="the eviction counted in status.preemptions", proc=operator.proc)
    assert st.get("retries", 0) == 0, f"an eviction burned a retry: {json.dumps(st)[:2000]}"
    ours = _jobs(cluster, namespace)
    assert ours and all(j["spec"].get("suspend") for j in ours if not j["status"].get("completionTime")), \
        "Kueue suspends the evicted Job; the operator must not unsuspend it"
    w = _status(cluster, namespace).get("workers") or {}
    assert (w.get("waiting") or 0) >= 1 and (w.get("admitted") or 0) == 0, w


def _docs_queue_block() -> list[dict[str, Any]]:
    text = (Path(__file__).parents[2] / "docs" / "install.md").read_text()
    for block in text.split("```yaml")[1:]:
        body = block.split("```")[0]
        if "kind: ClusterQueue" in body:
            return [d for d in yaml.safe_load_all(body) if d]
    raise AssertionError("docs/install.md has no ClusterQueue example")


def test_the_documented_cluster_queue_is_valid_and_covers_what_our_pods_request(cluster: LocalCluster) -> None:
    from builders import CLUSTER, index_job, render_job, spec

    docs = _docs_queue_block()
    cluster.run("create", "namespace", "vision", check=False)
    proc = cluster.run("apply", "--dry-run=server", "--server-side", "-f", "-",
                       input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}), check=False)
    assert proc.returncode == 0, f"Kueue's API server refuses the documented queue: {proc.stderr}"
    covered = {r for d in docs if d["kind"] == "ClusterQueue"
               for g in d["spec"]["resourceGroups"] for r in g["coveredResources"]}
    s = spec(CLUSTER, queue="team-vision")
    for job in (render_job(s), index_job(s)):
        for c in job["spec"]["template"]["spec"]["containers"]:
            res = c.get("resources", {})
            asked = set(res.get("requests", {})) | set(res.get("limits", {}))
            assert asked <= covered, f"{job['metadata']['name']}: {sorted(asked - covered)} not covered: never admitted"
