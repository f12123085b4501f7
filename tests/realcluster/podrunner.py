"""A tiny kubelet for the real control plane: Nodes of its own whose pods run as local processes.

kwok fakes pods (Running forever); this runner makes pods *really run*, so the real Job
controller decides completions, retries and failed indexes from real exit codes. It registers
Nodes that are not kwok's (no ``kwok.x-k8s.io/node`` annotation) and keeps them Ready the way the
kubelet does (a Lease in ``kube-node-lease`` renewed every second or two, the Ready condition's
heartbeat in the node status). For each pod the scheduler binds to one of them it:

* resolves the container's ``env`` through the API (``value``; ``fieldRef`` incl.
  ``metadata.annotations['…']`` which the Job controller uses for ``JOB_COMPLETION_INDEX``;
  ``secretKeyRef``; ``configMapKeyRef``); a missing Secret/ConfigMap/key keeps the pod Pending
  with ``CreateContainerConfigError`` and is retried, as the kubelet does;
* materialises ``emptyDir``/``configMap``/``secret`` volumes in a per-pod folder and rewrites
  every env value and argument that starts with a volume's ``mountPath`` to that folder (so a
  spec mounted from a ConfigMap, ``SYNTH_SPEC_FILE``, is found wherever the pod mounts it);
  ``HOME``/``TMPDIR`` per pod unless the pod sets them; ``workingDir`` under the pod folder;
* runs ``command`` + ``args`` (the image's ``synth-render``/``synthctl`` mapped to this venv's
  console scripts) in its own process group, stdout/stderr to ``LOGDIR/{ns}_{pod}.log``;
* writes the status as the kubelet does: Running (``startTime``, ``containerStatuses[].state.running
  .startedAt``, Ready/ContainersReady/Initialized/PodScheduled), then Succeeded/Failed with the
  container's real exit code (128+signal for a signal), ``reason`` Completed/Error and ``finishedAt``;
* on graceful deletion (``deletionTimestamp``): SIGTERM to the process group, SIGKILL after the
  pod's grace period, the final status, then ``DELETE`` with grace 0 (the kubelet's last word);
* :meth:`PodRunner.shutdown_node` is the kubelet's graceful node shutdown (a spot reclaim):
  the node turns NotReady, each pod gets ``DisruptionTarget`` (reason ``TerminationByKubelet``)
  and SIGTERM, and ends Failed with ``reason: Terminated``; the Node object is then the test's to
  delete. When a Node disappears from the API the runner SIGKILLs its pods without a word (node loss);
* :meth:`PodRunner.freeze_node` is a hung node (no heartbeat, its processes stopped, nothing reported),
  :meth:`PodRunner.lose_node` the end of its VM (the processes killed, nothing reported).

Not done: images, resource limits, probes, init containers, restarts, user ids.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

log = logging.getLogger("podrunner")

VENV_BIN = Path(sys.executable).parent
RUNNER_LABEL = "parallelsynth.io/runner"
LEASE_NS = "kube-node-lease"
GPU = "nvidia.com/gpu"
SPOT = "cloud.google.com/gke-spot"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class RunnerNode:
    """One Node of the runner: a GPU pool node (on-demand or spot) or an untainted CPU node."""

    name: str
    pool: str
    spot: bool = False
    gpus: int = 2
    cpu: str = "8"
    memory: str = "32Gi"
    zone: str = "zone-0"

    def manifest(self) -> dict[str, Any]:
        labels = {"parallelsynth.io/pool": self.pool, RUNNER_LABEL: "true", "kubernetes.io/hostname": self.name,
                  "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "topology.kubernetes.io/zone": self.zone}
        taints: list[dict[str, str]] = []
        capacity = {"cpu": self.cpu, "memory": self.memory, "pods": "20", "ephemeral-storage": "100Gi"}
        if self.gpus:
            labels["nvidia.com/gpu.present"] = "true"
            labels["node.kubernetes.io/instance-type"] = "g2-standard-8"
            taints.append({"key": GPU, "value": "present", "effect": "NoSchedule"})
            capacity[GPU] = str(self.gpus)
        if self.spot:
            labels[SPOT] = "true"
            taints.append({"key": SPOT, "value": "true", "effect": "NoSchedule"})
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": labels},
                "spec": {"taints": taints}}

    def status(self) -> dict[str, Any]:
        capacity = {"cpu": self.cpu, "memory": self.memory, "pods": "20", "ephemeral-storage": "100Gi"}
        if self.gpus:
            capacity[GPU] = str(self.gpus)
        return {"capacity": capacity, "allocatable": capacity,
                "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "v1.36.3",
                             "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": "",
                             "kernelVersion": "", "osImage": "podrunner", "containerRuntimeVersion": "local://"},
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                              {"type": "Hostname", "address": self.name}]}


DEFAULT_NODES = (RunnerNode("runner-ondemand-0", "gpu-ondemand"), RunnerNode("runner-spot-0", "gpu-spot", spot=True),
                 RunnerNode("runner-cpu-0", "cpu", gpus=0))


class _ConfigError(Exception):
    pass


@dataclass
class _Proc:
    namespace: str
    name: str
    uid: str
    node: str
    container: str
    popen: subprocess.Popen[bytes]
    started: str
    terminating: bool = False
    silent: bool = False
    """The node is gone: report nothing more (node loss)."""
    shutdown: bool = False
    """Stopped by the graceful node shutdown: ends Failed with reason Terminated."""
    record: dict[str, Any] = field(default_factory=dict)
    """Its entry in :attr:`PodRunner.history` (``finished`` and ``exit`` are filled in at exit)."""


@dataclass
class PodRunner:
    """Run with :meth:`start`/:meth:`stop` (or as a context manager); all threads are daemons."""

    kubeconfig: Path
    workdir: Path
    nodes: tuple[RunnerNode, ...] = DEFAULT_NODES
    commands: dict[str, str] = field(default_factory=lambda: {
        "synth-render": str(VENV_BIN / "synth-render"), "synthctl": str(VENV_BIN / "synthctl")})
    base_env: dict[str, str] = field(default_factory=lambda: {
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"})
    heartbeat_seconds: float = 2.0
    exits: list[tuple[str, int]] = field(default_factory=list)
    """Every container exit seen: (pod name, exit code)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Every container started: namespace, pod, node, labels, argv (pods may be gone from the API);
    ``started`` and ``finished``, the ``startTime`` and ``finishedAt`` written to its status
    (``finished`` None while it runs, or when its node was lost and nothing was written), and
    ``exit``, its exit code."""

    def __post_init__(self) -> None:
        self.api = config.new_client_from_config(config_file=str(self.kubeconfig))
        # Dicts in, models out: typed as Any (the client's stubs want its model classes as bodies).
        self.core: Any = client.CoreV1Api(self.api)
        self.coord: Any = client.CoordinationV1Api(self.api)
        self.procs: dict[str, _Proc] = {}  # by pod uid
        self.done: set[str] = set()  # uids whose container ran (never started twice)
        self.waiting: dict[str, dict[str, Any]] = {}  # uid -> pod kept Pending by a config error
        self.alive: set[str] = set()
        self._ready_since: dict[str, str] = {}
        self.beating: set[str] = set()
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.logdir = self.workdir / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PodRunner:
        for n in self.nodes:
            self.register(n)
        for target in (self._heartbeat_loop, self._watch_loop, self._retry_loop):
            t = threading.Thread(target=target, name=f"podrunner-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Kill every process this runner started and stop its loops (its Nodes stay)."""
        self._stop.set()
        with self.lock:
            procs = list(self.procs.values())
        for p in procs:
            p.silent = True
            _killpg(p.popen, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(10)

    def remove_nodes(self) -> None:
        for n in self.nodes:
            with contextlib.suppress(ApiException):
                self.core.delete_node(n.name)

    def __enter__(self) -> PodRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ nodes

    def register(self, node: RunnerNode) -> None:
        """Create (or take over) the Node, its Lease, and report it Ready."""
        with self.lock:
            if node.name not in {n.name for n in self.nodes}:
                self.nodes = (*self.nodes, node)
        try:
            self.core.create_node(node.manifest())
        except ApiException as e:
            if e.status != 409:
                raise
            self.core.patch_node(node.name, node.manifest())
        with self.lock:
            self.alive.add(node.name)
            self.beating.add(node.name)
        self._beat(node)

    def _node(self, name: str) -> RunnerNode:
        return next(n for n in self.nodes if n.name == name)

    def _beat(self, node: RunnerNode) -> None:
        body = {"status": {**node.status(), "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "podrunner is posting ready status",
             "lastHeartbeatTime": now(), "lastTransitionTime": self._ready_since.setdefault(node.name, now())},
            *[{"type": t, "status": "False", "reason": f"KubeletHas{r}", "message": "ok", "lastHeartbeatTime": now(),
               "lastTransitionTime": self._ready_since[node.name]}
              for t, r in (("MemoryPressure", "SufficientMemory"), ("DiskPressure", "NoDiskPressure"),
                           ("PIDPressure", "SufficientPID"))]]}}
        self.core.patch_node_status(node.name, body)
        lease: dict[str, Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": node.name, "namespace": LEASE_NS},
                 "spec": {"holderIdentity": node.name, "leaseDurationSeconds": 40, "renewTime": micro_now()}}
        try:
            self.coord.patch_namespaced_lease(node.name, LEASE_NS, {"spec": lease["spec"]})
        except ApiException as e:
            if e.status != 404:
                raise
            uid = self.core.read_node(node.name).metadata.uid
            lease["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node.name,
                                                     "uid": uid}]
            self.coord.create_namespaced_lease(LEASE_NS, lease)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            with self.lock:
                beating = [self._node(n) for n in self.beating]
            for node in beating:
                try:
                    self._beat(node)
                except ApiException as e:
                    if e.status == 404:
                        self._lost(node.name)
                    else:
                        log.warning("heartbeat of %s: %s", node.name, e)
                except Exception as e:  # the API server restarting: try again next beat
                    log.warning("heartbeat of %s: %s", node.name, e)

    def _lost(self, node: str) -> None:
        """The Node object is gone: its processes die without a word (node loss)."""
        with self.lock:
            self.alive.discard(node)
            self.beating.discard(node)
            victims = [p for p in self.procs.values() if p.node == node]
        for p in victims:
            p.silent = True
            _killpg(p.popen, signal.SIGKILL)
        log.info("node %s deleted: killed %d pods", node, len(victims))

    def shutdown_node(self, name: str, *, grace: float = 30.0) -> list[str]:
        """Graceful node shutdown (the kubelet on a reclaimed spot VM): NotReady, every pod gets
        ``DisruptionTarget``/``TerminationByKubelet`` and SIGTERM, SIGKILL after ``grace``, each
        ends Failed with ``reason: Terminated``. Returns the pods stopped; the Node stays."""
        with self.lock:
            self.beating.discard(name)
            victims = [p for p in self.procs.values() if p.node == name and p.popen.poll() is None]
        self.core.patch_node_status(name, {"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "node is shutting down",
             "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}})
        msg = "Pod was terminated in response to imminent node shutdown."
        for p in victims:
            p.shutdown = p.terminating = True
            with contextlib.suppress(ApiException):
                self.core.patch_namespaced_pod_status(p.name, p.namespace, {"status": {"conditions": [
                    {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                     "message": msg, "lastTransitionTime": now()}]}})
            _killpg(p.popen, signal.SIGTERM)
            threading.Thread(target=self._kill_after, args=(p, grace), daemon=True).start()
        return [p.name for p in victims]

    def freeze_node(self, name: str) -> list[str]:
        """The node hangs (a VM frozen by its host): its kubelet stops posting status and renewing
        the Lease, and its pods' processes stop (SIGSTOP) without a word to the API. The node
        lifecycle controller then marks it ``Unknown`` and taints it, the taint-eviction
        controller evicts its pods; nothing acknowledges the deletions. Returns the frozen pods."""
        with self.lock:
            self.beating.discard(name)
            self.alive.discard(name)  # its pods' deletions and new pods go unseen
            victims = [p for p in self.procs.values() if p.node == name and p.popen.poll() is None]
            for p in victims:
                p.silent = True
        for p in victims:
            _killpg(p.popen, signal.SIGSTOP)
        return [p.name for p in victims]

    def lose_node(self, name: str) -> None:
        """The node's VM is gone (shut down or deleted): its processes die without a word."""
        self._lost(name)

    # ------------------------------------------------------------------ pods

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                listed = self.core.list_pod_for_all_namespaces()
                for pod in listed.items:
                    self._handle(self.api.sanitize_for_serialization(pod))
                w = watch.Watch()
                for ev in w.stream(self.core.list_pod_for_all_namespaces,
                                   resource_version=listed.metadata.resource_version, timeout_seconds=30):
                    if self._stop.is_set():
                        w.stop()
                        return
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self._handle(self.api.sanitize_for_serialization(ev["object"]))
            except Exception as e:  # 410 Gone, a dropped connection: list again
                if not self._stop.is_set():
                    log.info("pod watch restarts: %s", e)
                    time.sleep(0.5)

    def _retry_loop(self) -> None:
        """Pods kept Pending by a missing Secret/ConfigMap are tried again, as the kubelet does."""
        while not self._stop.wait(1.0):
            with self.lock:
                pending = list(self.waiting.values())
            for pod in pending:
                with contextlib.suppress(ApiException):
                    fresh = self.core.read_namespaced_pod(pod["metadata"]["name"], pod["metadata"]["namespace"])
                    self._handle(self.api.sanitize_for_serialization(fresh))

    def _handle(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        node = spec.get("nodeName")
        uid = meta["uid"]
        with self.lock:
            if node not in self.alive:
                return
            running = self.procs.get(uid)
            if meta.get("deletionTimestamp"):
                self.waiting.pop(uid, None)
                if running is not None:
                    if not running.terminating:
                        running.terminating = True
                        grace = float(meta.get("deletionGracePeriodSeconds") or 0)
                        _killpg(running.popen, signal.SIGTERM)
                        threading.Thread(target=self._kill_after, args=(running, grace), daemon=True).start()
                    return
                if uid not in self.done:  # deleted before it started: nothing to stop
                    self.done.add(uid)
                    threading.Thread(target=self._finish_unstarted, args=(pod,), daemon=True).start()
                return
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            if running is not None or uid in self.done or phase != "Pending":
                return
            try:
                argv, env, cwd = self._prepare(pod)
            except _ConfigError as e:
                self.waiting[uid] = pod
                self._waiting_status(pod, "CreateContainerConfigError", str(e))
                return
            self.waiting.pop(uid, None)
            self.done.add(uid)
            container = spec["containers"][0]["name"]
            out = (self.logdir / f"{meta['namespace']}_{meta['name']}.log").open("ab")
            popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
            out.close()
            p = _Proc(namespace=meta["namespace"], name=meta["name"], uid=uid, node=node, container=container,
                      popen=popen, started=now())
            p.record = {"namespace": p.namespace, "pod": p.name, "uid": uid, "node": node, "argv": argv,
                        "labels": dict(meta.get("labels") or {}), "started": p.started, "finished": None,
                        "exit": None}
            self.procs[uid] = p
            self.history.append(p.record)
        self._running_status(p)
        threading.Thread(target=self._wait_exit, args=(p,), name=f"pod-{p.name}", daemon=True).start()

    # ------------------------------------------------------------------ preparing a container

    def _prepare(self, pod: dict[str, Any]) -> tuple[list[str], dict[str, str], Path]:
        meta, spec = pod["metadata"], pod["spec"]
        container = spec["containers"][0]
        root = self.workdir / "pods" / f"{meta['namespace']}_{meta['name']}"
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        mounts: dict[str, Path] = {}
        for vm in container.get("volumeMounts") or []:
            vol = volumes.get(vm["name"])
            if vol is None:
                raise _ConfigError(f"volume {vm['name']!r} is not declared in spec.volumes")
            host = root / "volumes" / vm["name"]
            host.mkdir(parents=True, exist_ok=True)
            if "configMap" in vol:
                src = vol["configMap"]
                self._project(host, self._configmap(meta["namespace"], src["name"], optional=src.get("optional")),
                              src.get("items"), f'configmap "{src["name"]}"')
            elif "secret" in vol:
                src = vol["secret"]
                sec = self._secret(meta["namespace"], src["secretName"], optional=src.get("optional"))
                self._project(host, {k: base64.b64decode(v).decode() for k, v in sec.items()}, src.get("items"),
                              f'secret "{src["secretName"]}"')
            elif "projected" in vol:
                self._projected(pod, vol["projected"], host)
            elif "emptyDir" not in vol:
                raise _ConfigError(f"volume {vm['name']!r}: only emptyDir, configMap, secret and projected are run here")
            mounts[vm["mountPath"].rstrip("/") or "/"] = host
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {**self.base_env, "HOME": str(home), "TMPDIR": str(home), "HOSTNAME": meta["name"]}
        for item in container.get("env") or []:
            env[item["name"]] = self._env_value(pod, item)

        def local(value: str) -> str:
            for mpath, host in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
                if value == mpath or value.startswith(mpath + "/"):
                    return str(host) + value[len(mpath):]
            return value

        env = {k: local(v) for k, v in env.items()}
        command = list(container.get("command") or [])
        if not command:
            raise _ConfigError("the runner needs an explicit container command (it has no image entrypoint)")
        exe = self.commands.get(command[0]) or shutil.which(command[0], path=env["PATH"])
        if exe is None:
            raise _ConfigError(f"executable {command[0]!r} not found")
        argv = [exe, *(local(a) for a in command[1:]), *(local(a) for a in container.get("args") or [])]
        cwd = Path(local(container["workingDir"])) if container.get("workingDir") else root
        if not str(cwd).startswith(str(root)):
            cwd = root / "workdir" / str(cwd).lstrip("/")
        cwd.mkdir(parents=True, exist_ok=True)
        return argv, env, cwd

    def _projected(self, pod: dict[str, Any], vol: dict[str, Any], host: Path) -> None:
        """A projected volume (the ServiceAccount token volume the API server adds to every pod)."""
        ns = pod["metadata"]["namespace"]
        for src in vol.get("sources") or []:
            if "configMap" in src:
                ref = src["configMap"]
                self._project(host, self._configmap(ns, ref["name"], optional=ref.get("optional")),
                              ref.get("items"), f'configmap "{ref["name"]}"')
            elif "secret" in src:
                ref = src["secret"]
                sec = self._secret(ns, ref["name"], optional=ref.get("optional"))
                self._project(host, {k: base64.b64decode(v).decode() for k, v in sec.items()}, ref.get("items"),
                              f'secret "{ref["name"]}"')
            elif "downwardAPI" in src:
                for item in src["downwardAPI"].get("items") or []:
                    (host / item["path"]).write_text(self._env_value(pod, {"name": item["path"], "valueFrom": item}))
            elif "serviceAccountToken" in src:
                req = {"spec": {"audiences": [src["serviceAccountToken"].get("audience")]
                                if src["serviceAccountToken"].get("audience") else None,
                                "expirationSeconds": src["serviceAccountToken"].get("expirationSeconds", 3600),
                                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod["metadata"]["name"],
                                                   "uid": pod["metadata"]["uid"]}}}
                try:
                    tok = self.core.create_namespaced_service_account_token(
                        pod["spec"].get("serviceAccountName") or "default", ns, req)
                except ApiException as e:
                    raise _ConfigError(f"serviceaccount token: {e.reason}") from None
                (host / src["serviceAccountToken"]["path"]).write_text(tok.status.token)

    @staticmethod
    def _project(host: Path, data: dict[str, str], items: list[dict[str, str]] | None, what: str) -> None:
        for item in items or [{"key": k, "path": k} for k in data]:
            if item["key"] not in data:
                raise _ConfigError(f"{what} has no key {item['key']}")
            target = host / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]])

    def _configmap(self, ns: str, name: str, *, optional: bool | None = False) -> dict[str, str]:
        try:
            return dict(self.core.read_namespaced_config_map(name, ns).data or {})
        except ApiException as e:
            if e.status == 404 and optional:
                return {}
            raise _ConfigError(f'configmap "{name}" not found') from None

    def _secret(self, ns: str, name: str, *, optional: bool | None = False) -> dict[str, str]:
        try:
            return dict(self.core.read_namespaced_secret(name, ns).data or {})
        except ApiException as e:
            if e.status == 404 and optional:
                return {}
            raise _ConfigError(f'secret "{name}" not found') from None

    def _env_value(self, pod: dict[str, Any], item: dict[str, Any]) -> str:
        if "value" in item:
            return str(item["value"])
        src = item.get("valueFrom") or {}
        ns = pod["metadata"]["namespace"]
        if "secretKeyRef" in src:
            ref = src["secretKeyRef"]
            data = self._secret(ns, ref["name"], optional=ref.get("optional"))
            if ref["key"] not in data:
                if ref.get("optional"):
                    return ""
                raise _ConfigError(f"couldn't find key {ref['key']} in Secret {ns}/{ref['name']}")
            return base64.b64decode(data[ref["key"]]).decode()
        if "configMapKeyRef" in src:
            ref = src["configMapKeyRef"]
            data = self._configmap(ns, ref["name"], optional=ref.get("optional"))
            if ref["key"] not in data:
                if ref.get("optional"):
                    return ""
                raise _ConfigError(f"couldn't find key {ref['key']} in ConfigMap {ns}/{ref['name']}")
            return str(data[ref["key"]])
        if "fieldRef" in src:
            path = src["fieldRef"]["fieldPath"]
            m = re.match(r"metadata\.(annotations|labels)\['(.+)'\]$", path)
            if m:
                return str((pod["metadata"].get(m[1]) or {}).get(m[2], ""))
            fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": ns,
                      "metadata.uid": pod["metadata"]["uid"], "spec.nodeName": pod["spec"].get("nodeName", ""),
                      "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                      "status.hostIP": "127.0.0.1", "status.podIP": "127.0.0.1"}
            if path not in fields:
                raise _ConfigError(f"env {item['name']}: fieldRef {path} is not supported")
            return str(fields[path])
        raise _ConfigError(f"env {item['name']}: unsupported valueFrom {sorted(src)}")

    # ------------------------------------------------------------------ status, as the kubelet writes it

    def _patch_status(self, ns: str, name: str, status: dict[str, Any]) -> bool:
        try:
            self.core.patch_namespaced_pod_status(name, ns, {"status": status})
            return True
        except ApiException as e:
            if e.status not in (404, 409, 422):
                log.warning("status of %s/%s: %s", ns, name, e)
            return False

    def _waiting_status(self, pod: dict[str, Any], reason: str, message: str) -> None:
        c = pod["spec"]["containers"][0]
        self._patch_status(pod["metadata"]["namespace"], pod["metadata"]["name"], {
            "phase": "Pending", "containerStatuses": [{
                "name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                "started": False, "state": {"waiting": {"reason": reason, "message": message}}}]})

    @staticmethod
    def _conditions(ready: bool, at: str) -> list[dict[str, Any]]:
        s = "True" if ready else "False"
        return [{"type": "Initialized", "status": "True", "lastTransitionTime": at},
                {"type": "Ready", "status": s, "lastTransitionTime": at, **({} if ready else {"reason": "PodCompleted"})},
                {"type": "ContainersReady", "status": s, "lastTransitionTime": at,
                 **({} if ready else {"reason": "PodCompleted"})},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": at}]

    def _running_status(self, p: _Proc) -> None:
        self._patch_status(p.namespace, p.name, {
            "phase": "Running", "startTime": p.started, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}], "conditions": self._conditions(True, p.started),
            "containerStatuses": [{"name": p.container, "image": "", "imageID": "", "ready": True, "restartCount": 0,
                                   "started": True, "containerID": f"local://{p.popen.pid}",
                                   "state": {"running": {"startedAt": p.started}}}]})

    def _kill_after(self, p: _Proc, grace: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(grace)
            return
        _killpg(p.popen, signal.SIGKILL)

    def _wait_exit(self, p: _Proc) -> None:
        rc = p.popen.wait()
        code = rc if rc >= 0 else 128 - rc
        self.exits.append((p.name, code))
        with self.lock:
            self.procs.pop(p.uid, None)
        p.record["exit"] = code
        if p.silent:
            return
        finished = p.record["finished"] = now()
        status: dict[str, Any] = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": self._conditions(False, finished),
            "containerStatuses": [{"name": p.container, "image": "", "imageID": "", "ready": False,
                                   "restartCount": 0, "started": False, "containerID": f"local://{p.popen.pid}",
                                   "state": {"terminated": {
                                       "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                       "startedAt": p.started, "finishedAt": finished,
                                       "containerID": f"local://{p.popen.pid}"}}}]}
        if p.shutdown:
            status.update(phase="Failed", reason="Terminated",
                          message="Pod was terminated in response to imminent node shutdown.")
        self._patch_status(p.namespace, p.name, status)
        if p.terminating and not p.shutdown:
            self._delete_now(p.namespace, p.name, p.uid)

    def _finish_unstarted(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            self._patch_status(meta["namespace"], meta["name"], {"phase": "Failed",
                                                                 "conditions": self._conditions(False, now())})
        self._delete_now(meta["namespace"], meta["name"], meta["uid"])

    def _delete_now(self, ns: str, name: str, uid: str) -> None:
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0,
                                            body=client.V1DeleteOptions(grace_period_seconds=0,
                                                                        preconditions={"uid": uid}))

    # ------------------------------------------------------------------ test hooks

    def running(self, *, node: str | None = None) -> list[_Proc]:
        with self.lock:
            return [p for p in self.procs.values() if p.popen.poll() is None and not p.terminating
                    and (node is None or p.node == node)]

    def kill(self, pod: str, sig: int = signal.SIGKILL) -> bool:
        """Signal a running pod's process group (a crash: SIGKILL ends it with 137)."""
        with self.lock:
            p = next((p for p in self.procs.values() if p.name == pod), None)
        return p is not None and _killpg(p.popen, sig)

    def pod_log(self, namespace: str, pod: str) -> str:
        path = self.logdir / f"{namespace}_{pod}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _killpg(popen: subprocess.Popen[bytes], sig: int) -> bool:
    if popen.poll() is not None:
        return False
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        return False
    return True
