"""The operator at fleet scale on a real API server (kwok nodes), and the simulator checked against it.

    python benchmarks/bench_fleet.py            # 1,000 GPU nodes (200 on-demand + 800 spot), 2M samples
    python benchmarks/bench_fleet.py --quick    # 100 nodes, 30k samples: a few minutes (CI runs it)
    python benchmarks/bench_fleet.py --quick --json   # the figures as one JSON object on stdout

What runs: ``scripts/local-cluster.sh up`` (etcd, kube-apiserver, controller-manager, scheduler
1.36, kwok fake GPU nodes), a moto S3 server (its own process), the CRDs, ``synthctl operator`` as a
process (with the cluster-admin kubeconfig: RBAC is checked by tests/realcluster/test_real_install.py;
here only load matters), and :mod:`fleet_standin` playing kubelet and renderer: each render pod runs
for a seeded log-normal time, then commits its shard to the bucket through the renderer's commit
code (``synth_render.manifests.commit``) and ends ``Succeeded`` with the renderer's termination
message. The operator sees real Jobs, pods, exit codes, pod GC and the scheduler.

Faults, after the fleet is full: a reclaim storm (30% of the spot nodes deleted within the storm
window; replacements join ``provision`` seconds later under new names, as a node autoscaler
would), one zone NotReady (its kubelets stop reporting: nodes Ready=False, no completions there),
the operator restarted (SIGTERM, a new process), and API throttling (kube-apiserver restarted with
``--max-requests-inflight`` lowered, then restored).

Printed: time to full fleet, running vs wanted over time (``--plot``, PNG), operator CPU and peak
RSS (/proc), API requests per minute by verb and resource (the API server's
``apiserver_request_total``), the operator's requests per committed shard vs the KMock figure of
benchmarks/bench_operator.py at the same batch size, reconcile p50/p99 (the operator's histogram),
etcd object counts at peak (``apiserver_storage_objects``) against the window, samples/day vs
target, preemptions counted vs pods lost with deleted nodes, retries burned, and the simulator
(``parallel_synth.simulator.fleet.simulate``, what ``synthctl simulate`` runs) on the same
manifest, pod-time distribution and fault schedule: measured/simulated ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import os
import random
import shlex
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from fleet_standin import Standin  # noqa: E402
from kubernetes import client, config  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from synth_contract import layout, planning  # noqa: E402
from synth_contract.api import SynthDatasetSpec  # noqa: E402
from synth_contract.store import open_store  # noqa: E402

GROUP, VERSION = "parallelsynth.io", "v1alpha1"
NS = "fleet"
DATASET = "fleet"
BUCKET = "fleet"
SYNTHCTL = str(Path(sys.executable).parent / "synthctl")


@dataclass(frozen=True)
class Scale:
    gpu: int
    spot: int
    zones: int
    samples: int
    shard: int
    sps: float
    sigma: float
    dataset_interval: float
    batch_interval: float
    storm_after: float
    storm_seconds: float
    provision: float
    zone_after: float
    zone_seconds: float
    restart_after: float
    throttle_after: float
    throttle_seconds: float
    inflight: int
    timeout: float

    @property
    def nodes(self) -> int:
        return self.gpu + self.spot


QUICK = Scale(gpu=20, spot=80, zones=3, samples=12_000, shard=20, sps=1.0, sigma=0.5, dataset_interval=5,
              batch_interval=5, storm_after=20, storm_seconds=30, provision=30, zone_after=70, zone_seconds=40,
              restart_after=120, throttle_after=150, throttle_seconds=40, inflight=6, timeout=900)
FULL = Scale(gpu=200, spot=800, zones=3, samples=2_000_000, shard=200, sps=0.3, sigma=0.5, dataset_interval=15,
             batch_interval=10, storm_after=60, storm_seconds=60, provision=60, zone_after=180, zone_seconds=60,
             restart_after=300, throttle_after=360, throttle_seconds=90, inflight=20, timeout=2400)
STORM_FRACTION = 0.30


def log(msg: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------- the manifest


def manifest(sc: Scale, endpoint: str) -> dict[str, Any]:
    """The dataset: sized so the fleet stays full; the target needs every allowed worker."""
    target = int(sc.nodes * 86400 / sc.sps)
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "SynthDataset",
        "metadata": {"name": DATASET, "namespace": NS},
        "spec": {
            "samples": sc.samples, "seed": 26, "version": "1", "shardSize": sc.shard,
            "output": {"uri": f"s3://{BUCKET}/data", "endpointUrl": endpoint, "region": "us-east-1"},
            "throughput": {"targetPerDay": target},
            "workers": {"min": 1, "max": sc.nodes},
            "nodePool": {"gpuResource": "nvidia.com/gpu", "gpusPerWorker": 1, "cpu": "1", "memory": "1Gi",
                         "spot": True, "onDemandFallback": False},
            "pricing": {"spotPerGpuHour": 0.3, "onDemandPerGpuHour": 1.0},
            "estimates": {"gpuSecondsPerSample": sc.sps, "bytesPerSample": 200},
            "retry": {"perShard": 3, "attempts": 3},
            "image": "ghcr.io/parallel-synth/renderer:0.1.0",
        },
    }


# ---------------------------------------------------------------------------------- processes


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


def start_moto(work: Path) -> tuple[Proc, str]:
    port = free_port()
    code = ("import signal; from moto.server import ThreadedMotoServer; "
            f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={port}); s.start(); signal.pause()")
    out = work / "moto.log"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=out.open("ab"), stderr=subprocess.STDOUT,
                         start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait(lambda: _http_ok(url + "/moto-api/"), 60, "moto")
    return Proc(p, out), url


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status < 500)
    except OSError:
        return False


def wait(pred: Any, timeout: float, what: str, every: float = 0.5) -> None:
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise SystemExit(f"bench_fleet: {what} not ready within {timeout:.0f}s")
        time.sleep(every)


@dataclass
class OperatorRun:
    proc: Proc
    health: str
    metrics_port: int
    cpu0: float = 0.0


class OperatorHandle:
    """``synthctl operator -n fleet`` as a process; survives restarts (figures accumulate)."""

    def __init__(self, work: Path, kubeconfig: Path, sc: Scale) -> None:
        self.work, self.kubeconfig, self.sc = work, kubeconfig, sc
        self.run: OperatorRun | None = None
        self.cpu_done = 0.0
        self.peak_rss = 0
        self.api_done = 0
        self.hist_done: dict[float, float] = defaultdict(float)
        self.restarts = 0

    def start(self) -> None:
        health, metrics = free_port(), free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "SYNTH_OPERATOR_DATASET_INTERVAL": str(self.sc.dataset_interval),
               "SYNTH_OPERATOR_BATCH_INTERVAL": str(self.sc.batch_interval),
               "SYNTH_OPERATOR_INITIAL_DELAY": "0.5"}
        out = self.work / "operator.log"
        p = subprocess.Popen([SYNTHCTL, "operator", "-n", NS, "--standalone",
                              f"--liveness=http://127.0.0.1:{health}/healthz", f"--metrics-port={metrics}"],
                             stdout=out.open("ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.run = OperatorRun(Proc(p, out), f"http://127.0.0.1:{health}/healthz", metrics)
        wait(lambda: _http_ok(self.run.health) if self.run else False, 90, "the operator's /healthz")

    def pid(self) -> int | None:
        return self.run.proc.popen.pid if self.run and self.run.proc.popen.poll() is None else None

    def cpu_rss(self) -> tuple[float, int]:
        """(CPU seconds so far, all runs; current RSS bytes); peak RSS kept from VmHWM."""
        pid = self.pid()
        if pid is None:
            return self.cpu_done, 0
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            tick = os.sysconf("SC_CLK_TCK")
            cpu = (int(fields[11]) + int(fields[12])) / tick
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return self.cpu_done, 0
        kv = {ln.split(":")[0]: ln.split(":")[1].strip() for ln in status.splitlines() if ":" in ln}
        rss = int(kv.get("VmRSS", "0 kB").split()[0]) * 1024
        self.peak_rss = max(self.peak_rss, int(kv.get("VmHWM", "0 kB").split()[0]) * 1024)
        return self.cpu_done + cpu, rss

    def api_requests(self) -> int:
        """API requests of the operator core (its /healthz payload), all runs."""
        if not self.run:
            return self.api_done
        try:
            with urllib.request.urlopen(self.run.health, timeout=5) as r:
                doc = json.loads(r.read())
            return self.api_done + int(doc.get("apiRequests", 0))
        except (OSError, ValueError):
            return self.api_done

    def histogram(self) -> dict[float, float]:
        """Cumulative reconcile-duration buckets (le -> count), batch and dataset handlers, all runs."""
        out = defaultdict(float, self.hist_done)
        if not self.run:
            return out
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.run.metrics_port}/metrics", timeout=10) as r:
                text = r.read().decode()
        except OSError:
            return out
        for fam in text_string_to_metric_families(text):
            if fam.name == "parallelsynth_reconcile_duration_seconds":
                for s in fam.samples:
                    if s.name.endswith("_bucket"):
                        out[float(s.labels["le"])] += s.value
        return out

    def stop(self) -> None:
        if not self.run:
            return
        self.hist_done = self.histogram()
        self.api_done = self.api_requests()
        cpu, _ = self.cpu_rss()
        self.cpu_done = cpu
        self.run.proc.stop()
        self.run = None

    def restart(self) -> float:
        t = time.time()
        self.stop()
        self.start()
        self.restarts += 1
        return time.time() - t


# ---------------------------------------------------------------------------------- the API server


class ApiServer:
    """Scrapes /metrics (counters accumulate over restarts) and restarts kube-apiserver with new flags."""

    def __init__(self, d: Path, env: dict[str, str]) -> None:
        self.dir = d
        self.url = env["APISERVER_URL"]
        pki = d / "pki"
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.base: dict[tuple[str, str, str], float] = defaultdict(float)  # counters of earlier processes
        self.last: dict[tuple[str, str, str], float] = {}
        self.storage_peak: dict[str, float] = defaultdict(float)
        self.series: list[tuple[float, dict[tuple[str, str, str], float]]] = []
        self.lock = threading.Lock()

    def _get(self, path: str, timeout: float = 30) -> str:
        with urllib.request.urlopen(self.url + path, context=self.ctx, timeout=timeout) as r:
            return str(r.read().decode())

    def scrape(self) -> None:
        try:
            text = self._get("/metrics")
        except OSError:
            return
        counts: dict[tuple[str, str, str], float] = defaultdict(float)
        for fam in text_string_to_metric_families(text):
            if fam.name == "apiserver_request":
                for s in fam.samples:
                    if s.name == "apiserver_request_total":
                        key = (s.labels.get("verb", ""), s.labels.get("resource", ""), s.labels.get("code", ""))
                        counts[key] += s.value
            elif fam.name == "apiserver_storage_objects":
                for s in fam.samples:
                    r = s.labels.get("resource", "")
                    self.storage_peak[r] = max(self.storage_peak[r], s.value)
        with self.lock:
            self.last = dict(counts)
            total = defaultdict(float, self.base)
            for k, v in counts.items():
                total[k] += v
            self.series.append((time.time(), dict(total)))

    def ready(self) -> bool:
        try:
            return self._get("/readyz", timeout=5).strip() == "ok"
        except OSError:
            return False

    def restart(self, inflight: int) -> float:
        """Restart kube-apiserver with ``--max-requests-inflight INFLIGHT`` (mutating: half)."""
        self.scrape()
        with self.lock:
            for k, v in self.last.items():
                self.base[k] += v
            self.last = {}
        cmd = shlex.split((self.dir / "logs" / "kube-apiserver.cmd").read_text())
        for flag, value in (("--max-requests-inflight", inflight), ("--max-mutating-requests-inflight",
                                                                    max(1, inflight // 2))):
            cmd[cmd.index(flag) + 1] = str(value)
        pidfile = self.dir / "pids" / "kube-apiserver.pid"
        pid = int(pidfile.read_text())
        t = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        for _ in range(120):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.25)
        (self.dir / "logs" / "kube-apiserver.cmd").write_text(" ".join(shlex.quote(c) for c in cmd) + "\n")
        logf = (self.dir / "logs" / "kube-apiserver.log").open("ab")
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        pidfile.write_text(f"{p.pid}\n")
        wait(self.ready, 120, "kube-apiserver after its restart")
        return time.time() - t


# ---------------------------------------------------------------------------------- the run


@dataclass
class Sample:
    t: float
    running: int
    wanted: int
    committed: int
    cpu: float
    rss: int


@dataclass
class Run:
    sc: Scale
    work: Path
    cluster_dir: Path
    samples: list[Sample] = field(default_factory=list)
    faults: list[tuple[str, float, float]] = field(default_factory=list)
    lost_with_nodes: int = 0
    deleted_nodes: int = 0
    t_created: float = 0.0
    t_full: float | None = None
    t_done: float | None = None
    t_succeeded: float | None = None
    notes: list[str] = field(default_factory=list)


def custom(kc: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kc)


def dataset_status(api: client.CustomObjectsApi) -> dict[str, Any]:
    try:
        obj = api.get_namespaced_custom_object(GROUP, VERSION, NS, "synthdatasets", DATASET)
    except Exception:
        return {}
    return dict(obj.get("status") or {})


def clone_node(core: client.CoreV1Api, template: str, name: str) -> None:
    src = core.read_node(template).to_dict()
    labels = dict(src["metadata"]["labels"] or {})
    labels["kubernetes.io/hostname"] = name
    body = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"taints": [{"key": t["key"], "value": t.get("value"), "effect": t["effect"]}
                                for t in src["spec"].get("taints") or [] if not t["key"].startswith("node.")]},
            "status": {"allocatable": src["status"]["allocatable"], "capacity": src["status"]["capacity"],
                       "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake",
                                    "kubeProxyVersion": "fake", "machineID": "", "systemUUID": "", "bootID": "",
                                    "kernelVersion": "", "osImage": "", "containerRuntimeVersion": ""}}}
    core.create_node(body)


def set_ready(core: client.CoreV1Api, node: str, ready: bool) -> None:
    if ready:  # kwok takes the node back and reports it Ready again
        core.patch_node(node, {"metadata": {"annotations": {"kwok.x-k8s.io/status": None}}})
        return
    core.patch_node(node, {"metadata": {"annotations": {"kwok.x-k8s.io/status": "custom"}}})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_node_status(node, {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "bench_fleet: zone outage",
         "lastHeartbeatTime": now, "lastTransitionTime": now}]}})


def run_fleet(sc: Scale, work: Path, cluster_dir: Path, *, seed: int, reuse: bool,
              cleanup: contextlib.ExitStack) -> dict[str, Any]:
    """The run on the cluster; every process it starts is stopped by ``cleanup``, even on a failure."""
    work.mkdir(parents=True, exist_ok=True)
    if not reuse:
        log(f"local-cluster.sh up {cluster_dir} ({sc.gpu} on-demand + {sc.spot} spot nodes, {sc.zones} zones)")
        t = time.time()
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "local-cluster.sh"), "up", str(cluster_dir),
                               "--gpu-nodes", str(sc.gpu), "--spot-nodes", str(sc.spot), "--zones", str(sc.zones)],
                              capture_output=True, text=True, timeout=1800, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"bench_fleet: local-cluster.sh up failed:\n{proc.stderr[-3000:]}")
        log(f"cluster up in {time.time() - t:.0f}s")
    env = dict(ln.split("=", 1) for ln in (cluster_dir / "env").read_text().splitlines() if "=" in ln)
    kubeconfig = cluster_dir / "kubeconfig"
    kc = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(kc)
    api = custom(kc)
    moto, endpoint = start_moto(work)
    cleanup.callback(moto.stop)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    doc = manifest(sc, endpoint)
    (work / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    spec = SynthDatasetSpec.model_validate(doc["spec"])
    kubectl = [str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(kubeconfig)]
    subprocess.run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
                   check=True, capture_output=True)
    # (not `kubectl wait`: right after the create a CRD has no status.conditions yet, and wait errors out)
    ext = client.ApiextensionsV1Api(kc)

    def established() -> bool:
        for name in ("synthdatasets.parallelsynth.io", "renderbatches.parallelsynth.io"):
            conds = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conds):
                return False
        return True

    wait(established, 60, "the CRDs Established")
    with contextlib.suppress(client.ApiException):
        core.create_namespace({"metadata": {"name": NS}})
    wait(lambda: bool(core.list_namespaced_service_account(NS, field_selector="metadata.name=default").items),
         60, "the namespace's default ServiceAccount")
    with contextlib.suppress(client.ApiException):
        core.create_namespaced_service_account(NS, {"metadata": {"name": "parallel-synth-renderer"}})
    # The index Job is CPU-only (no GPU toleration): one untainted kwok node for it.
    with contextlib.suppress(client.ApiException):
        core.create_node({"apiVersion": "v1", "kind": "Node",
                          "metadata": {"name": "cpu-0", "annotations": {"kwok.x-k8s.io/node": "fake"},
                                       "labels": {"type": "kwok", "kubernetes.io/hostname": "cpu-0"}},
                          "status": {"allocatable": {"cpu": "8", "memory": "64Gi", "pods": "110"},
                                     "capacity": {"cpu": "8", "memory": "64Gi", "pods": "110"}}})

    root = layout.dataset_root(doc["spec"]["output"]["uri"], DATASET, spec.version)
    standin = Standin(kubeconfig=str(kubeconfig), namespace=NS, spec=spec, dataset=DATASET,
                      store_factory=lambda: open_store(root, endpoint_url=endpoint, region="us-east-1"),
                      seed=seed, sps=sc.sps, sigma=sc.sigma, workdir=work,
                      index_env={"SYNTH_SPEC_JSON": json.dumps(spec.wire()), "AWS_ENDPOINT_URL": endpoint},
                      threads=4 if sc.nodes <= 200 else 8)
    standin.start()
    cleanup.callback(standin.close)
    apis = ApiServer(cluster_dir, env)
    apis.scrape()
    op = OperatorHandle(work, kubeconfig, sc)
    cleanup.callback(op.stop)
    op.start()
    run = Run(sc, work, cluster_dir)
    shards_total = planning.shard_count(spec)
    stop = threading.Event()

    def sampler() -> None:
        last_api = 0.0
        while not stop.is_set():
            st = dataset_status(api)
            cpu, rss = op.cpu_rss()
            run.samples.append(Sample(time.time(), standin.running(), int((st.get("workers") or {}).get("desired") or 0),
                                      len(standin.committed), cpu, rss))
            if time.time() - last_api > 20:
                apis.scrape()
                last_api = time.time()
            stop.wait(2.0)

    run.t_created = time.time()
    api.create_namespaced_custom_object(GROUP, VERSION, NS, "synthdatasets", doc)
    log(f"dataset created: {sc.samples:,} samples, {shards_total:,} shards of {sc.shard}, "
        f"{planning.shards_per_batch(spec)} shards per batch, workers.max {sc.nodes}")
    threading.Thread(target=sampler, daemon=True).start()
    try:
        _drive(run, sc, core, api, standin, op, apis, shards_total, seed)
    finally:
        stop.set()
        apis.scrape()
        final = dataset_status(api)
        op_cpu, _ = op.cpu_rss()
        hist = op.histogram()
        op_api = op.api_requests()
        op.stop()
        standin.close()
        s3_manifests = _count(s3, f"data/{DATASET}/v{spec.version}/manifests/")
        moto.stop()
    return _figures(run, spec, final, standin, op, op_cpu, op_api, hist, apis, s3_manifests, shards_total)


def _count(s3: Any, prefix: str) -> int:
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        n += len(page.get("Contents") or [])
    return n


def _drive(run: Run, sc: Scale, core: client.CoreV1Api, api: client.CustomObjectsApi, standin: Standin,
           op: OperatorHandle, apis: ApiServer, shards_total: int, seed: int) -> None:
    rng = random.Random(seed)
    deadline = run.t_created + sc.timeout
    # the fleet fills
    while time.time() < deadline:
        if standin.running() >= 0.95 * sc.nodes:
            run.t_full = time.time()
            break
        if time.time() - run.t_created > sc.timeout / 3:
            run.notes.append("the fleet never reached 95% of workers.max; faults started anyway")
            break
        time.sleep(1.0)
    t0 = run.t_full or time.time()
    log(f"fleet full after {t0 - run.t_created:.0f}s ({standin.running()} running)")
    spot_nodes = sorted(n.metadata.name for n in core.list_node(label_selector="cloud.google.com/gke-spot=true").items)
    storm = rng.sample(spot_nodes, round(STORM_FRACTION * len(spot_nodes)))
    plan: list[tuple[float, str, Any]] = []
    for k, node in enumerate(storm):
        at = t0 + sc.storm_after + sc.storm_seconds * k / max(1, len(storm))
        plan.append((at, "delete", node))
        plan.append((at + sc.provision, "replace", (node, f"gpu-spot-r{k}")))
    zone = "zone-1"
    zone_nodes = sorted(n.metadata.name for n in core.list_node(
        label_selector=f"topology.kubernetes.io/zone={zone},type=kwok").items if n.metadata.name not in storm)
    plan += [(t0 + sc.zone_after, "zone-down", zone_nodes), (t0 + sc.zone_after + sc.zone_seconds, "zone-up", zone_nodes),
             (t0 + sc.restart_after, "restart", None), (t0 + sc.throttle_after, "throttle", sc.inflight),
             (t0 + sc.throttle_after + sc.throttle_seconds, "unthrottle", 400)]
    plan.sort(key=lambda p: p[0])
    storm_t = [t0 + sc.storm_after, t0 + sc.storm_after + sc.storm_seconds]
    for at, what, arg in plan:
        while time.time() < at:
            time.sleep(0.1)
        if what == "delete":
            standin.deleted_nodes.add(arg)
            run.lost_with_nodes += standin.live_on({arg})
            with contextlib.suppress(client.ApiException):
                core.delete_node(arg)
            run.deleted_nodes += 1
        elif what == "replace":
            with contextlib.suppress(client.ApiException):
                clone_node(core, spot_nodes[0] if spot_nodes[0] not in storm else
                           next(n for n in spot_nodes if n not in storm), arg[1])
        elif what == "zone-down":
            t = time.time()
            standin.unreachable.update(arg)
            for n in arg:
                set_ready(core, n, False)
            log(f"zone {zone}: {len(arg)} nodes NotReady")
            run.faults.append((f"{zone} NotReady ({len(arg)} nodes)", t - run.t_created, 0.0))
        elif what == "zone-up":
            for n in arg:
                set_ready(core, n, True)
            standin.unreachable.difference_update(arg)
            name, a, _ = run.faults[-1]
            run.faults[-1] = (name, a, time.time() - run.t_created)
        elif what == "restart":
            t = time.time()
            gap = op.restart()
            log(f"operator restarted ({gap:.1f}s without an operator)")
            run.faults.append(("operator restart", t - run.t_created, time.time() - run.t_created))
        elif what == "throttle":
            t = time.time()
            took = apis.restart(arg)
            log(f"kube-apiserver restarted with --max-requests-inflight {arg} ({took:.1f}s)")
            run.faults.append((f"API inflight {arg}", t - run.t_created, 0.0))
        elif what == "unthrottle":
            apis.restart(arg)
            name, a, _ = run.faults[-1]
            run.faults[-1] = (name, a, time.time() - run.t_created)
            log("kube-apiserver restored to --max-requests-inflight 400")
    run.faults.insert(0, (f"reclaim storm ({len(storm)} spot nodes)", storm_t[0] - run.t_created,
                          storm_t[1] - run.t_created))
    log(f"faults done; {len(standin.committed)}/{shards_total} shards committed")
    while time.time() < deadline:
        if len(standin.committed) >= shards_total and run.t_done is None:
            run.t_done = time.time()
            log(f"every shard committed after {run.t_done - run.t_created:.0f}s")
        st = dataset_status(api)
        if st.get("phase") in ("Succeeded", "Degraded", "Failed"):
            run.t_succeeded = time.time()
            log(f"dataset {st.get('phase')} after {run.t_succeeded - run.t_created:.0f}s")
            break
        time.sleep(2.0)
    else:
        run.notes.append(f"timed out after {sc.timeout:.0f}s")


# ---------------------------------------------------------------------------------- figures


def percentile(hist: dict[float, float], q: float) -> float | None:
    """Quantile of a cumulative Prometheus histogram (linear inside the bucket)."""
    items = sorted(hist.items())
    if not items or items[-1][1] <= 0:
        return None
    total = items[-1][1]
    want = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in items:
        if c >= want:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * ((want - prev_c) / (c - prev_c) if c > prev_c else 0.0)
        prev_le, prev_c = le, c
    return prev_le


def _per_minute(apis: ApiServer, t0: float) -> list[dict[str, Any]]:
    """Requests per minute by verb and resource, each minute of the run (all clients)."""
    rows = []
    series = apis.series
    for (ta, a), (tb, b) in itertools.pairwise(series):
        dt = (tb - ta) / 60
        if dt <= 0:
            continue
        by: dict[str, float] = defaultdict(float)
        for k, v in b.items():
            d = v - a.get(k, 0.0)
            if d > 0:
                by[f"{k[0]} {k[1]}"] += d / dt
        throttled = sum(v - a.get(k, 0.0) for k, v in b.items() if k[2] == "429") / dt
        rows.append({"t": round(tb - t0), "total": round(sum(by.values())), "throttled429": round(throttled),
                     "top": dict(sorted(((k, round(v)) for k, v in by.items()), key=lambda kv: -kv[1])[:8])})
    return rows


def _totals(apis: ApiServer) -> dict[str, float]:
    if len(apis.series) < 2:
        return {}
    a, b = apis.series[0][1], apis.series[-1][1]
    by: dict[str, float] = defaultdict(float)
    for k, v in b.items():
        by[f"{k[0]} {k[1]}"] += v - a.get(k, 0.0)
    return dict(sorted(by.items(), key=lambda kv: -kv[1]))


def _figures(run: Run, spec: SynthDatasetSpec, final: dict[str, Any], standin: Standin, op: OperatorHandle,
             op_cpu: float, op_api: int, hist: dict[float, float], apis: ApiServer, s3_manifests: int,
             shards_total: int) -> dict[str, Any]:
    t0 = run.t_created
    end = run.t_done or (run.samples[-1].t if run.samples else time.time())
    committed = len(standin.committed)
    samples_done = sum(len(planning.shard_range(spec, s)) for s in standin.committed)
    elapsed = max(1e-9, end - t0)
    steady = [s for s in run.samples if run.t_full and s.t >= run.t_full]
    cpu_steady = ((steady[-1].cpu - steady[0].cpu) / (steady[-1].t - steady[0].t)
                  if len(steady) > 1 and steady[-1].t > steady[0].t else None)
    storage = apis.storage_peak
    from parallel_synth.decisions.dataset import window_size
    from parallel_synth.settings import Settings

    window = window_size(spec, Settings.from_env().operator, planning.shards_per_batch(spec))
    status_bytes = len(json.dumps(final))
    preemptions = int(final.get("preemptions") or 0)
    retries = int(final.get("retries") or 0)
    lat = standin.start_latencies
    return {
        "mode": "quick" if run.sc.nodes <= 200 else "full",
        "nodes": run.sc.nodes, "gpuOnDemand": run.sc.gpu, "gpuSpot": run.sc.spot,
        "samples": spec.samples, "shardSize": spec.shard_size, "shards": shards_total,
        "shardsPerBatch": planning.shards_per_batch(spec), "window": window,
        "podSeconds": {"samples": len(standin.durations), "median": _q(standin.durations, 0.5),
                       "p99": _q(standin.durations, 0.99),
                       "mean": statistics.fmean(standin.durations) if standin.durations else None, "max": max(standin.durations, default=0.0),
                       "model": f"shardSize x {run.sc.sps} s x lognormal(0, {run.sc.sigma})"},
        "podStartSeconds": {"median": _q(lat, 0.5), "p99": _q(lat, 0.99)},
        "timeToFullFleet": (run.t_full - t0) if run.t_full else None,
        "completionSeconds": (run.t_done - t0) if run.t_done else None,
        "succeededSeconds": (run.t_succeeded - t0) if run.t_succeeded else None,
        "phase": final.get("phase"),
        "shardsCommitted": committed, "shardsInBucket": s3_manifests,
        "statusShardsCompleted": int((final.get("shards") or {}).get("completed") or 0),
        "samplesPerDayMeasured": samples_done / elapsed * 86400,
        "samplesPerDayTarget": spec.throughput.target_per_day,
        "statusSamplesPerDay": final.get("samplesPerDay"),
        "preemptionsCounted": preemptions, "podsLostWithDeletedNodes": run.lost_with_nodes,
        "nodesDeleted": run.deleted_nodes, "retries": retries,
        "operator": {"cpuSeconds": op_cpu, "cpuCoresAverage": op_cpu / elapsed, "cpuCoresSteady": cpu_steady,
                     "peakRssBytes": op.peak_rss, "restarts": op.restarts, "apiRequests": op_api,
                     "apiRequestsPerShard": op_api / max(1, committed),
                     "reconcileP50": percentile(hist, 0.5), "reconcileP99": percentile(hist, 0.99),
                     "reconciles": max(hist.values(), default=0)},
        "etcdPeak": {k: storage.get(k, 0) for k in ("renderbatches.parallelsynth.io", "jobs.batch", "pods",
                                                    "configmaps", "events", "nodes")},
        "datasetStatusBytes": status_bytes,
        "apiTotals": _totals(apis),
        "apiPerMinute": _per_minute(apis, t0),
        "faults": [{"what": w, "from": round(a, 1), "to": round(b, 1)} for w, a, b in run.faults],
        "standin": {"relists": standin.relists, "errors": standin.errors[:10], "retriedCompletions": standin.retried_completions, "commitSeconds": standin.commit_seconds,
                    "indexRuns": standin.index_runs},
        "series": [{"t": round(s.t - t0, 1), "running": s.running, "wanted": s.wanted, "committed": s.committed}
                   for s in run.samples],
        "notes": run.notes,
    }


def _q(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(q * len(ys)))]


# ---------------------------------------------------------------------------------- the simulator


def simulate_same(sc: Scale, work: Path, fig: dict[str, Any], seed: int) -> dict[str, Any]:
    """The simulator on the same manifest, pod-time model and fault schedule."""
    from parallel_synth.simulator.fleet import Simulation
    from parallel_synth.simulator.model import SimConfig

    doc = yaml.safe_load((work / "manifest.yaml").read_text())
    spec = SynthDatasetSpec.model_validate(doc["spec"])
    storm = next((f for f in fig["faults"] if f["what"].startswith("reclaim")), None)
    lost_share = fig["podsLostWithDeletedNodes"] / max(1, sc.nodes)  # of all running pods
    kw: dict[str, Any] = {}
    if storm and lost_share > 0:
        width = max(1.0, storm["to"] - storm["from"])
        kw = {"preemption_rate": -math.log(max(1e-6, 1 - lost_share)) / (width / 3600.0),
              "preemption_window": (storm["from"] / 86400, storm["to"] / 86400)}
    start = fig["podStartSeconds"]["median"] or 1.0
    cfg = SimConfig(gpu_seconds_per_sample=sc.sps, jitter=sc.sigma, pod_startup_seconds=start,
                    node_provision_seconds=sc.provision, spot_gpus=sc.nodes, on_demand_gpus=sc.gpu,
                    tick_seconds=sc.dataset_interval, reconcile_seconds=sc.dataset_interval, checkpoint=False,
                    seed=seed, warm_nodes=True, **kw)
    sim = Simulation(DATASET, spec, cfg)
    series: list[tuple[float, int]] = []
    inner = sim.cluster._set_running

    def tracked(delta: int) -> None:
        inner(delta)
        series.append((sim.clock.t, sim.cluster.running))

    sim.cluster._set_running = tracked  # type: ignore[method-assign]
    t = time.perf_counter()
    rep = sim.run()
    wall = time.perf_counter() - t
    full = next((ts for ts, r in series if r >= 0.95 * sc.nodes), None)
    done = rep.elapsed_days * 86400
    return {"samplesPerDay": rep.samples_completed / max(1e-9, done) * 86400, "timeToFullFleet": full,
            "completionSeconds": done, "preemptions": rep.preemptions, "retries": rep.retries,
            "finished": rep.finished, "wallSeconds": wall, "config": {k: v for k, v in vars(cfg).items()
                                                                      if k != "start"},
            "series": [(round(a, 1), b) for a, b in series[:: max(1, len(series) // 2000)]]}


def kmock_requests_per_shard(sc: Scale, fig: dict[str, Any]) -> float | None:
    """benchmarks/bench_operator.py's in-memory API at the same batch size and mean pod time."""
    import bench_operator

    from parallel_synth.settings import OperatorSettings, Settings

    raw = manifest(sc, "http://127.0.0.1:1")["spec"]
    mean = fig["podSeconds"]["mean"] or sc.shard * sc.sps
    settings = Settings(operator=OperatorSettings(dataset_interval=sc.dataset_interval,
                                                  batch_interval=sc.batch_interval))
    limit = min(planning.shard_count(SynthDatasetSpec.model_validate(raw)), 3000)
    r = asyncio.run(bench_operator.simulate(raw, settings=settings, shard_seconds=mean, failure_rate=0.0,
                                            max_shards=limit))
    return float(r.requests_per_shard)


# ---------------------------------------------------------------------------------- report


def plot(fig: dict[str, Any], sim: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = fig["series"]
    f, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot([p["t"] for p in s], [p["running"] for p in s], label="pods running (kwok, measured)")
    ax.plot([p["t"] for p in s], [p["wanted"] for p in s], ":", label="workers wanted (status.workers.desired)")
    if sim:
        ax.plot([a for a, _ in sim["series"]], [b for _, b in sim["series"]], "--", alpha=0.7,
                label="pods running (simulator)")
    for k, fl in enumerate(fig["faults"]):
        ax.axvspan(fl["from"], max(fl["to"], fl["from"] + 2), alpha=0.15, color=f"C{k + 3}", label=fl["what"])
    ax.set_xlabel("seconds since the SynthDataset was created")
    ax.set_ylabel("pods")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{fig['nodes']} kwok GPU nodes, {fig['samples']:,} samples in shards of {fig['shardSize']}")
    f.tight_layout()
    f.savefig(path, dpi=90)


def _r(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def report(fig: dict[str, Any], sim: dict[str, Any] | None, kmock: float | None) -> None:
    op = fig["operator"]
    mb = op["peakRssBytes"] / 2**20
    print(f"# fleet benchmark ({fig['mode']}): {fig['nodes']} kwok GPU nodes ({fig['gpuOnDemand']} on-demand + "
          f"{fig['gpuSpot']} spot), {fig['samples']:,} samples, {fig['shards']:,} shards of {fig['shardSize']}, "
          f"{fig['shardsPerBatch']} shards per batch (window {fig['window']})")
    ps = fig["podSeconds"]
    print(f"pod run time: median {ps['median'] or 0:.1f}s, p99 {ps['p99'] or 0:.1f}s, max {ps['max']:.1f}s "
          f"({ps['model']}); pod start (created -> Running) median {fig['podStartSeconds']['median'] or 0:.1f}s, "
          f"p99 {fig['podStartSeconds']['p99'] or 0:.1f}s")
    for fl in fig["faults"]:
        print(f"fault: {fl['what']} at {fl['from']:.0f}s .. {fl['to']:.0f}s")
    ttf = fig["timeToFullFleet"]
    print(f"time to full fleet (95% of workers.max running): {ttf:.0f}s" if ttf else "time to full fleet: never")
    print(f"every shard committed after {fig['completionSeconds']:.0f}s; dataset {fig['phase']} after "
          f"{fig['succeededSeconds'] or float('nan'):.0f}s" if fig["completionSeconds"] else
          f"NOT finished: {fig['shardsCommitted']}/{fig['shards']} shards committed")
    print(f"shards: committed {fig['shardsCommitted']}, manifests in the bucket {fig['shardsInBucket']}, "
          f"status.shards.completed {fig['statusShardsCompleted']} (expected {fig['shards']})")
    print(f"samples/day: measured {fig['samplesPerDayMeasured']:,.0f} vs target {fig['samplesPerDayTarget']:,} "
          f"(status.samplesPerDay at the end {fig['statusSamplesPerDay']})")
    print(f"preemptions counted {fig['preemptionsCounted']} vs pods lost with the {fig['nodesDeleted']} deleted "
          f"nodes {fig['podsLostWithDeletedNodes']} ({'exact' if fig['preemptionsCounted'] == fig['podsLostWithDeletedNodes'] else 'MISMATCH'}); "
          f"retries burned {fig['retries']} (must be 0)")
    steady = op["cpuCoresSteady"]
    print(f"operator: peak RSS {mb:.0f} MB (target < 300), CPU {op['cpuSeconds']:.0f}s = {op['cpuCoresAverage']:.2f} "
          f"cores average, {steady if steady is None else round(steady, 2)} cores at steady state (target < 1); "
          f"restarts {op['restarts']}")
    p50, p99 = op["reconcileP50"], op["reconcileP99"]
    print(f"reconcile latency: p50 {p50 if p50 is None else round(p50, 3)}s, p99 {p99 if p99 is None else round(p99, 3)}s "
          f"(target p99 < 2 s) over {op['reconciles']:.0f} reconciles")
    print(f"operator API requests: {op['apiRequests']:,} = {op['apiRequestsPerShard']:.2f} per committed shard; "
          f"KMock (bench_operator.py, same batch size): {kmock if kmock is None else round(kmock, 2)} per shard")
    e = fig["etcdPeak"]
    print(f"etcd objects at peak: RenderBatches {e['renderbatches.parallelsynth.io']:.0f} (window {fig['window']}), "
          f"Jobs {e['jobs.batch']:.0f}, Pods {e['pods']:.0f}, ConfigMaps {e['configmaps']:.0f}, Events {e['events']:.0f}; "
          f"dataset status {fig['datasetStatusBytes']} bytes")
    print("API requests by verb and resource over the run (all clients):")
    for k, v in list(fig["apiTotals"].items())[:14]:
        print(f"  {k:<40} {v:>10,.0f}")
    print("API requests per minute (all clients; top verbs):")
    for row in fig["apiPerMinute"]:
        top = ", ".join(f"{k} {v}" for k, v in list(row["top"].items())[:4])
        print(f"  t={row['t']:>5}s {row['total']:>7}/min (429: {row['throttled429']}) {top}")
    if sim:
        print(f"simulator (same manifest, pod model and storm; {sim['wallSeconds']:.1f}s wall): "
              f"samples/day {sim['samplesPerDay']:,.0f}, full fleet {sim['timeToFullFleet']}, "
              f"completion {sim['completionSeconds']:.0f}s, preemptions {sim['preemptions']}, retries {sim['retries']}")
        print(f"measured/simulated: samples/day {_r(fig['samplesPerDayMeasured'], sim['samplesPerDay'])}, "
              f"time to full fleet {_r(fig['timeToFullFleet'], sim['timeToFullFleet'])}, "
              f"completion {_r(fig['completionSeconds'], sim['completionSeconds'])}")
    si = fig["standin"]
    print(f"stand-in (kubelet + renderer): {fig['shardsCommitted']} commits, {si['commitSeconds']:.0f}s committing "
          f"in all, {si['retriedCompletions']} completions retried, {si['relists']} pod lists")
    for n in fig["notes"]:
        print(f"note: {n}")
    if fig["standin"]["errors"]:
        print(f"stand-in errors (first): {fig['standin']['errors'][:3]}")


def measure(sc: Scale, work: Path, cluster_dir: Path, *, seed: int = 26, reuse: bool = False,
            keep: bool = False) -> dict[str, Any]:
    """One run on the real control plane (cluster up, faults, down); the figures, also in work/measured.json."""
    with contextlib.ExitStack() as cleanup:
        if not keep:  # last out: the cluster, after the operator, the stand-in and moto
            cleanup.callback(subprocess.run, ["bash", str(ROOT / "scripts" / "local-cluster.sh"), "down",
                                              str(cluster_dir)], capture_output=True, timeout=300, check=False)
        fig = run_fleet(sc, work, cluster_dir, seed=seed, reuse=reuse, cleanup=cleanup)
    (work / "measured.json").write_text(json.dumps(fig, default=str))  # --from-figures reads it back
    return fig


def compare(sc: Scale, work: Path, fig: dict[str, Any], seed: int) -> tuple[dict[str, Any] | None, float | None]:
    """The simulator and KMock on the measured run; a failure of either is a note, not a lost run."""
    sim: dict[str, Any] | None = None
    try:
        sim = simulate_same(sc, work, fig, seed)
    except Exception as exc:
        fig["notes"].append(f"the simulator failed: {type(exc).__name__}: {exc}")
    if sim:
        fig["simulator"] = {k: v for k, v in sim.items() if k != "series"}
        fig["ratios"] = {"samplesPerDay": _ratio(fig["samplesPerDayMeasured"], sim["samplesPerDay"]),
                         "timeToFullFleet": _ratio(fig["timeToFullFleet"], sim["timeToFullFleet"]),
                         "completion": _ratio(fig["completionSeconds"], sim["completionSeconds"])}
    kmock: float | None = None
    try:
        kmock = kmock_requests_per_shard(sc, fig)
    except Exception as exc:
        fig["notes"].append(f"KMock (bench_operator.py) failed: {type(exc).__name__}: {exc}")
    fig["kmockRequestsPerShard"] = kmock
    return sim, kmock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100 nodes, 12k samples (a few minutes)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--cluster-dir", type=Path, default=None, help="the local-cluster.sh DIR (default: under --workdir)")
    ap.add_argument("--workdir", type=Path, default=None, help="logs, manifest, plot (default: a temp folder)")
    ap.add_argument("--reuse", action="store_true", help="use the cluster already running in --cluster-dir")
    ap.add_argument("--keep", action="store_true", help="leave the cluster running")
    ap.add_argument("--plot", type=Path, default=None, help="write the running-vs-wanted PNG here")
    ap.add_argument("--from-figures", type=Path, default=None,
                    help="no cluster: re-run the simulator and the report on WORKDIR/measured.json of an earlier run")
    ap.add_argument("--nodes", type=int, default=None,
                    help="with --quick: N nodes (a fifth on-demand) and 120 samples per node, the same faults")
    ap.add_argument("--seed", type=int, default=26)
    args = ap.parse_args()
    sc = QUICK if args.quick else FULL
    if args.nodes:
        sc = dataclasses.replace(sc, gpu=args.nodes // 5, spot=args.nodes - args.nodes // 5,
                                 samples=120 * args.nodes * sc.shard // QUICK.shard)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` still runs the clean-up below
    import tempfile

    t = time.time()
    if args.from_figures:
        work = args.workdir or args.from_figures.parent
        fig = json.loads(args.from_figures.read_text())
    else:
        work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-fleet-"))
        fig = measure(sc, work, args.cluster_dir or work / "cluster", seed=args.seed, reuse=args.reuse,
                      keep=args.keep)
    sim, kmock = compare(sc, work, fig, args.seed)
    fig["wallSeconds"] = time.time() - t
    fig["load"] = os.getloadavg()
    plot(fig, sim, args.plot or work / "fleet.png")
    if args.json:
        print(json.dumps(fig, default=str))
    else:
        report(fig, sim, kmock)
        print(f"plot: {args.plot or work / 'fleet.png'}; wall {fig['wallSeconds']:.0f}s; load average {fig['load']}")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


if __name__ == "__main__":
    main()
