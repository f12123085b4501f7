"""A light stand-in for the render container on kwok nodes (benchmarks/bench_fleet.py).

kwok makes the operator's render pods ``Running`` on fake nodes and never completes them. This
module plays their kubelet and renderer: it watches the namespace's pods, draws each render pod a
seeded duration (log-normal, a long tail) when it starts running, and when that time is up it
commits the pod's shard to the bucket through the renderer's own commit path
(``synth_render.shards.ShardWriter``, ``shards.index_part``, ``manifests.manifest``,
``manifests.commit``: the fenced, conditional-create commit; no Blender, one tiny JSON per
sample), then writes the pod's terminal status as a kubelet would (phase ``Succeeded``, the
``render`` container terminated with exit code 0 and the termination message the renderer
writes). The pod carries ``kwok.x-k8s.io/status=custom`` first so kwok leaves its status alone.

Pods on nodes the benchmark made unreachable (a zone NotReady) are not completed until the node is
back (a lost kubelet reports nothing); pods on deleted nodes are never completed (pod GC fails them
with ``DisruptionTarget``, as on a reclaimed spot node). The index Job's pod runs the real
``synthctl index`` against the bucket and ends with its exit code.

Everything the benchmark measures about pods (running over time, start latency, pods lost with a
node) is read from this watch.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import Store
from synth_render import manifests, shards

RENDER = "render"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def draw_seconds(seed: int, shard: int, attempt: int, *, samples: int, sps: float, sigma: float) -> float:
    """The seeded run time of one pod: ``samples x sps x exp(N(0, sigma))`` (the simulator's model)."""
    rng = random.Random(f"{seed}:{shard}:{attempt}")
    return samples * sps * math.exp(rng.gauss(0.0, sigma)) if sigma > 0 else samples * sps


def commit_shard(store: Store, spec: SynthDatasetSpec, dataset: str, shard: int, *, seconds: float,
                 workdir: Path) -> dict[str, Any]:
    """Write shard ``shard`` (one small JSON per sample) and commit it as the renderer does; the manifest."""
    t0 = time.perf_counter()
    indices = planning.shard_range(spec, shard)
    per = seconds / max(1, len(indices))
    records = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        writer = shards.ShardWriter(Path(tmp) / f"{shard:08d}.tar")
        for i in indices:
            key = planning.sample_key(i)
            cat = planning.category_of(spec, i)
            meta = {"key": key, "index": i, "shard": shard, "category": cat, "seed": planning.sample_seed(spec.seed, spec.version, i),
                    "quality": {"score": 0.9, "passed": True}}
            writer.add(key, {"json": json.dumps(meta, sort_keys=True).encode()})
            records.append(manifests.Record(key=key, category=cat, score=0.9, passed=True, attempts=1,
                                            seconds=round(per, 3), index=i))
        size, digest = writer.finish()
        doc = manifests.manifest(spec, dataset, shard, records, indices=indices, size=size, digest=digest,
                                 device="kwok", engine_version="standin", t0=t0, resumed=0)
        part, doc["indexPart"] = shards.index_part(writer.path, shard)
        done = manifests.commit(store, shard, [(layout.shard_path(shard), writer.path),
                                               (layout.index_part_path(shard), part)], doc)
    return done.manifest


@dataclass
class PodState:
    name: str
    uid: str
    node: str
    phase: str
    container: str
    shard: int | None
    running_since: float | None = None
    created: float = 0.0
    due: float | None = None
    done: bool = False


@dataclass
class Standin:
    """The watch, the clock of each pod and the completions (see the module docstring)."""

    kubeconfig: str
    namespace: str
    spec: SynthDatasetSpec
    dataset: str
    store_factory: Callable[[], Store]
    seed: int
    sps: float
    sigma: float
    workdir: Path
    index_env: dict[str, str] = field(default_factory=dict)
    threads: int = 4
    pods: dict[str, PodState] = field(default_factory=dict)
    unreachable: set[str] = field(default_factory=set)
    deleted_nodes: set[str] = field(default_factory=set)
    attempts: dict[int, int] = field(default_factory=dict)
    committed: set[int] = field(default_factory=set)
    completed_pods: int = 0
    start_latencies: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    commit_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    relists: int = 0
    retried_completions: int = 0
    index_runs: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.heap: list[tuple[float, str, str]] = []
        self.stop = threading.Event()
        self.api = client.CoreV1Api(config.new_client_from_config(config_file=self.kubeconfig))
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="standin")
        self._local = threading.local()

    # ------------------------------------------------------------------ counts the benchmark reads

    def running(self) -> int:
        with self.lock:
            return sum(1 for p in self.pods.values() if p.container == RENDER and p.phase == "Running"
                       and not p.done)

    def live_on(self, nodes: set[str]) -> int:
        """Render pods not yet terminal bound to these nodes (what a node deletion takes away)."""
        with self.lock:
            return sum(1 for p in self.pods.values() if p.container == RENDER and p.node in nodes and not p.done
                       and p.phase in ("Pending", "Running"))

    # ------------------------------------------------------------------ the watch

    def _store(self) -> Store:
        s = getattr(self._local, "store", None)
        if s is None:
            s = self._local.store = self.store_factory()
        return s

    def _observe(self, obj: dict[str, Any], kind: str) -> None:
        meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        name = str(meta.get("name"))
        now = time.time()
        with self.lock:
            if kind == "DELETED":
                self.pods.pop(name, None)
                return
            containers = spec.get("containers") or [{}]
            p = self.pods.get(name)
            if p is None or p.uid != meta.get("uid"):
                shard = None
                if containers[0].get("name") == RENDER:
                    args = containers[0].get("args") or []
                    start = int(args[args.index("--shard-start") + 1]) if "--shard-start" in args else 0
                    shard = start + int((meta.get("annotations") or {}).get(INDEX_ANNOTATION, 0))
                created = _epoch(meta.get("creationTimestamp")) or now
                p = self.pods[name] = PodState(name, str(meta.get("uid")), "", "Pending",
                                               str(containers[0].get("name")), shard, created=created)
            p.node = str(spec.get("nodeName") or "")
            p.phase = str(st.get("phase") or "Pending")
            if p.phase in ("Succeeded", "Failed") or meta.get("deletionTimestamp"):
                p.done = True
            if p.phase == "Running" and p.running_since is None and not p.done:
                p.running_since = now
                self.start_latencies.append(now - p.created)
                if p.container == RENDER and p.shard is not None:
                    attempt = self.attempts.get(p.shard, 0)
                    self.attempts[p.shard] = attempt + 1
                    samples = len(planning.shard_range(self.spec, p.shard))
                    secs = draw_seconds(self.seed, p.shard, attempt, samples=samples, sps=self.sps, sigma=self.sigma)
                    self.durations.append(secs)
                    p.due = now + secs
                else:
                    p.due = now
                heapq.heappush(self.heap, (p.due, name, p.uid))

    def watch(self) -> None:
        """List then watch the namespace's pods; relist on a broken or expired watch."""
        rv = ""
        while not self.stop.is_set():
            try:
                if not rv:
                    resp = self.api.list_namespaced_pod(self.namespace, _preload_content=False, _request_timeout=120)
                    doc = json.loads(resp.data)
                    self.relists += 1
                    seen = set()
                    for item in doc.get("items") or []:
                        self._observe(item, "ADDED")
                        seen.add(item["metadata"]["name"])
                    with self.lock:
                        for gone in [n for n in self.pods if n not in seen]:
                            self.pods.pop(gone, None)
                    rv = doc["metadata"]["resourceVersion"]
                resp = self.api.list_namespaced_pod(self.namespace, watch=True, resource_version=rv,
                                                    allow_watch_bookmarks=True, timeout_seconds=300,
                                                    _preload_content=False, _request_timeout=330)
                for line in resp:
                    if self.stop.is_set():
                        break
                    ev = json.loads(line)
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        rv = ""
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if ev.get("type") != "BOOKMARK":
                        self._observe(obj, str(ev.get("type")))
                resp.release_conn()
            except Exception as exc:
                self.errors.append(f"watch: {type(exc).__name__}: {str(exc)[:200]}")
                rv = ""
                self.stop.wait(1.0)

    # ------------------------------------------------------------------ completions

    def tick(self) -> None:
        """Hand every pod whose time is up to a worker thread."""
        while not self.stop.is_set():
            now = time.time()
            ready: list[PodState] = []
            deferred: list[tuple[float, str, str]] = []
            with self.lock:
                while self.heap and self.heap[0][0] <= now:
                    _due, name, uid = heapq.heappop(self.heap)
                    p = self.pods.get(name)
                    if p is None or p.uid != uid or p.done or p.phase != "Running":
                        continue
                    if p.node in self.deleted_nodes:
                        continue
                    if p.node in self.unreachable:
                        deferred.append((now + 1.0, name, uid))  # its kubelet is unreachable: later
                        continue
                    p.done = True
                    ready.append(p)
                for d in deferred:
                    heapq.heappush(self.heap, d)
            for p in ready:
                self.pool.submit(self._complete, p)
            self.stop.wait(0.2)

    def _complete(self, p: PodState) -> None:
        try:
            started = p.running_since or time.time()
            if p.container == RENDER and p.shard is not None:
                t = time.perf_counter()
                doc = commit_shard(self._store(), self.spec, self.dataset, p.shard,
                                   seconds=time.time() - started, workdir=self.workdir)
                self.commit_seconds += time.perf_counter() - t
                message = json.dumps({"outcome": "committed", "shard": p.shard, "samples": doc.get("samples"),
                                      "quarantined": {"samples": 0, "categories": {}}})
                code = 0
                with self.lock:
                    self.committed.add(p.shard)
            else:  # the index Job: the real `synthctl index` against the bucket
                proc = subprocess.run([str(Path(sys.executable).parent / "synthctl"), "index", "--dataset",
                                       self.dataset], env={**os.environ, **self.index_env}, capture_output=True,
                                      text=True, timeout=1800, check=False)
                code, message = proc.returncode, (proc.stderr or proc.stdout)[-2000:]
                self.index_runs.append(code)
            self._terminate(p, code, message, started)
            with self.lock:
                self.completed_pods += 1
        except Exception as exc:  # e.g. 429 while --max-requests-inflight is lowered, or the apiserver restarting
            self.errors.append(f"complete {p.name}: {type(exc).__name__}: {str(exc)[:300]}")
            with self.lock:  # a kubelet retries its status update: the commit is idempotent (``already``)
                self.retried_completions += 1
                if self.pods.get(p.name) is p:
                    p.done = False
                    heapq.heappush(self.heap, (time.time() + 2.0, p.name, p.uid))

    def _terminate(self, p: PodState, code: int, message: str, started: float) -> None:
        self.api.patch_namespaced_pod(p.name, self.namespace,
                                      {"metadata": {"annotations": {"kwok.x-k8s.io/status": "custom"}}},
                                      _request_timeout=30)
        now = _rfc3339(time.time())
        body = {"status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": [{"type": t, "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}
                           for t in ("Ready", "ContainersReady")],
            "containerStatuses": [{
                "name": p.container, "image": "standin", "imageID": "", "ready": False, "restartCount": 0,
                "started": False,
                "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                         "message": message, "startedAt": _rfc3339(started), "finishedAt": now}}}],
        }}
        self.api.patch_namespaced_pod_status(p.name, self.namespace, body, _request_timeout=30)

    def start(self) -> None:
        for target in (self.watch, self.tick):
            threading.Thread(target=target, daemon=True, name=f"standin-{target.__name__}").start()

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _epoch(text: Any) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
