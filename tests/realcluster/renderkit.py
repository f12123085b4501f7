"""What the render and fault tests on the real control plane share: S3, the pod runner, datasets.

* ``bucket_on``: a bucket on the session's moto S3 server (``s3_endpoint`` in tests/conftest.py);
* ``prepare_namespace``: the credentials Secret and the renderer ServiceAccount a SynthDataset's
  pods need in its namespace (what a user creates before applying one);
* ``dataset``: a tiny SynthDataset (CPU, 64 px, a few spp) pinned to the runner's Nodes with a
  ``nodeSelector`` (the kwok nodes stay untouched: their pods would run forever);
* ``wait_phase`` (``kubectl wait --for=jsonpath``: a watch), ``render_events``: the JSON events of
  every pod log the runner kept (which shards were committed, which samples rendered, where);
* ``billed_gpu_seconds``, ``expected_cost``, ``assert_cost``: the cost status a run must show,
  derived from the pod times the runner wrote (never a constant tuned to one machine's speed);
* ``OperatorHandle``: the module's operator, which a test may kill and restart.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster import LocalCluster
from operator_proc import Install, Operator, start_operator
from podrunner import RUNNER_LABEL, PodRunner

CREDS = "s3-creds"
RENDERER_SA = "parallel-synth-renderer"
GROUP = "parallelsynth.io"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def s3(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def bucket_on(endpoint: str) -> str:
    name = f"rc-{uuid.uuid4().hex[:16]}"
    s3(endpoint).create_bucket(Bucket=name)
    return name


def prepare_namespace(cluster: LocalCluster, ns: str) -> None:
    cluster.apply([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": CREDS, "namespace": ns}, "stringData": KEYS},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": RENDERER_SA, "namespace": ns},
         "automountServiceAccountToken": False},
    ])


def dataset(name: str, ns: str, *, endpoint: str, bucket: str, shards: int = 4, shard_size: int = 2,
            spot: bool = True, fallback: bool = False, workers: int = 2, per_batch: int = 2,
            node_selector: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A SynthDataset that renders in seconds per shard on a CPU (rgb+depth+segmentation, 64 px)."""
    spec: dict[str, Any] = {
        "samples": shards * shard_size, "seed": 7, "version": "1", "shardSize": shard_size,
        "shardsPerBatch": per_batch,
        "categories": [{"name": "geometry"}, {"name": "materials"}],
        "render": {"engine": "cycles", "device": "cpu", "resolutions": [{"width": 64, "height": 64}],
                   "samples": {"min": 2, "max": 4}, "denoise": False,
                   "passes": ["rgb", "depth", "segmentation"]},
        # No quality gate: 2-4 spp is noisy by design (the gate is tested in tests/renderer).
        "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0, "maxNoiseSigma": 1.0,
                    "maxClipped": 1.0, "minObjectPixels": 1, "minVisibleFraction": 0.0},
        "output": {"uri": f"s3://{bucket}/data", "endpointUrl": endpoint, "region": "us-east-1",
                   "credentialsSecret": CREDS, "indexFormats": ["jsonl"]},
        "workers": {"min": 1, "max": workers},
        "nodePool": {"gpusPerWorker": 1, "cpu": "1", "memory": "1Gi", "spot": spot, "onDemandFallback": fallback,
                     "nodeSelector": node_selector if node_selector is not None else {RUNNER_LABEL: "true"}},
        "retry": {"perShard": 3, "attempts": 3},
        "image": "ghcr.io/parallel-synth/renderer:0.1.0",
    }
    spec.update(extra)
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": "SynthDataset",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def status(cluster: LocalCluster, ns: str, name: str) -> dict[str, Any]:
    return dict(cluster.get("sds", name, "-n", ns).get("status") or {})


def wait_phase(cluster: LocalCluster, ns: str, name: str, phase: str, *, timeout: float = 240) -> dict[str, Any]:
    """Until the dataset's phase is ``phase`` (a watch); its status then."""
    cluster.wait(f"sds/{name}", f"jsonpath={{.status.phase}}={phase}", namespace=ns, timeout=timeout)
    return status(cluster, ns, name)


def pods(cluster: LocalCluster, ns: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["pods", "-n", ns] + (["-l", selector] if selector else [])
    return list(cluster.get(*args)["items"])


def render_events(runner: PodRunner, ns: str) -> list[dict[str, Any]]:
    """Every JSON log event of every pod of ``ns`` the runner ran, with the pod name as ``_pod``."""
    out: list[dict[str, Any]] = []
    for path in sorted(runner.logdir.glob(f"{ns}_*.log")):
        pod = path.stem[len(ns) + 1:]
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                out.append({**ev, "_pod": pod})
    return out


def commits(events: list[dict[str, Any]]) -> Counter[int]:
    """Shard -> times a pod committed it (the renderer's ``shard committed`` event)."""
    return Counter(int(e["shard"]) for e in events if e.get("event") == "shard committed")


def rendered(events: list[dict[str, Any]]) -> Counter[str]:
    """Sample key -> times it was rendered (``sample`` events; a resumed sample is not rendered again)."""
    return Counter(str(e["key"]) for e in events if e.get("event") == "sample")


def billed_gpu_seconds(runner: PodRunner, ns: str, name: str, *, gpus: int = 1) -> dict[str, float]:
    """GPU-seconds per capacity ("spot", "on-demand") that the operator must bill for dataset
    ``name``, from what the runner ran: each render pod's ``finishedAt - startTime`` (the very
    timestamps the runner wrote to its status, which the operator reads) x ``gpus`` per worker,
    by the spot label of its node. The index Job's pod is not GPU time. Fails on a pod that
    has not finished or whose end was never written (a lost node): its bill is not the runner's
    to know."""
    spot_nodes = {n.name for n in runner.nodes if n.spot}
    out = {"spot": 0.0, "on-demand": 0.0}
    for h in runner.history:
        if h["namespace"] != ns or h["labels"].get(f"{GROUP}/dataset") != name or "-index-" in h["pod"]:
            continue
        assert h["finished"], f"{h['pod']} has no finishedAt (still running, or its node was lost)"
        seconds = (_epoch(h["finished"]) - _epoch(h["started"])) * gpus
        out["spot" if h["node"] in spot_nodes else "on-demand"] += seconds
    return out


def expected_cost(billed: dict[str, float], pricing: dict[str, float]) -> dict[str, float]:
    """``status.cost`` as ``decisions/cost.py`` computes it from ``billed`` GPU-seconds, unrounded:
    hours by capacity and ``spot x spotPerGpuHour + on-demand x onDemandPerGpuHour`` dollars."""
    return {"gpuHours": (billed["spot"] + billed["on-demand"]) / 3600, "spotGpuHours": billed["spot"] / 3600,
            "onDemandGpuHours": billed["on-demand"] / 3600,
            "dollars": (billed["spot"] * pricing["spotPerGpuHour"]
                        + billed["on-demand"] * pricing["onDemandPerGpuHour"]) / 3600}


ROUNDING = {"gpuHours": 0.0005, "spotGpuHours": 0.0005, "onDemandGpuHours": 0.0005, "dollars": 0.005}
"""Half a unit of the last digit ``CostReport.status()`` keeps (3 decimals of hours, cents)."""


def assert_cost(cost: dict[str, float], expected: dict[str, float]) -> None:
    """``cost`` (a ``status.cost``) is ``expected`` rounded as the status rounds it: nothing more
    than the rounding may differ, so a pod billed twice, missed or at the wrong price fails."""
    for key, tol in ROUNDING.items():
        assert abs(cost.get(key, 0.0) - expected[key]) <= tol + 1e-9, (key, cost, expected)


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def validate(endpoint: str, bucket: str, name: str, tmp: Path) -> tuple[int, str]:
    import os
    import subprocess
    import sys

    synthctl = str(Path(sys.executable).parent / "synthctl")
    env = {**os.environ, **KEYS, "AWS_REGION": "us-east-1"}
    proc = subprocess.run([synthctl, "validate", f"s3://{bucket}/data/{name}/v1", "--endpoint-url", endpoint,
                           "--report", str(tmp / f"validate-{name}.json")],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@dataclass
class OperatorHandle:
    """The module's operator process; tests may kill it (SIGKILL) and start it again."""

    install: Install
    logdir: Path
    args: tuple[str, ...] = ("-A", "--standalone")
    env: dict[str, str] = field(default_factory=dict)
    op: Operator | None = None
    starts: int = 0

    def start(self) -> Operator:
        self.starts += 1
        self.op = start_operator(self.install, self.logdir / f"operator-{self.starts}.log", *self.args, env=self.env)
        return self.op

    def kill(self) -> int:
        assert self.op is not None
        return self.op.stop(signal.SIGKILL)

    def stop(self) -> None:
        if self.op is not None:
            self.op.stop()
            self.op = None

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logdir.glob("operator-*.log")))
