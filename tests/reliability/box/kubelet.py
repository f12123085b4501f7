"""A simulated scheduler and kubelets: each Pod runs as a local process of its container command.

Honoured: scheduling onto a fixed set of nodes with a pod capacity each (``PodScheduled``
False/Unschedulable when full); the container's ``command`` + ``args``; ``env`` with ``value``,
``valueFrom.secretKeyRef`` (read from the Secret in the API server at start; a missing Secret or
key keeps the pod Pending with ``CreateContainerConfigError``, as the kubelet does) and
``valueFrom.fieldRef`` (``metadata.name``, ``metadata.namespace``, ``spec.nodeName``, annotations,
labels); ``emptyDir`` and ``configMap`` volumes (a per-pod host folder, holding the ConfigMap's keys
for the latter; env values that point into a mount path are
rewritten into that folder); graceful deletion (SIGTERM to the process group, SIGKILL after
``terminationGracePeriodSeconds``, capped by ``grace_cap``), then the terminal status and the
removal of the Pod object; Pod ``phase``, ``containerStatuses`` (running/terminated with
``exitCode``, 128+signal for a signal), ``Ready``/``ContainersReady``/``PodScheduled`` and
``DisruptionTarget`` conditions.

Faults: :meth:`Kubelets.preempt` (spot reclaim: ``DisruptionTarget`` reason
``TerminationByKubelet``, then SIGTERM through graceful deletion), :meth:`Kubelets.kill`
(SIGKILL, as the OOM killer or a crashing runtime would; it reports whether a live container got
the signal, :meth:`Kubelets.crashed` which kills ended in 137), :meth:`Kubelets.lose_node` (the node
vanishes: its processes die without a word, its pods stay Running in the API until the node
lifecycle controller marks them ``DisruptionTarget``/``DeletionByTaintManager``, Failed, and
removes them; a replacement node joins later), :meth:`Kubelets.partition_node` (the same for the
API, but the containers keep running and can still reach S3: zombie writers, which
:meth:`Kubelets.freeze`/:meth:`Kubelets.thaw` hold and release).

Not simulated: images (the command runs from this machine's virtualenv), resource limits, GPUs,
user IDs and read-only root filesystems (checked statically by tests/security instead), probes,
init containers, ``restartPolicy: OnFailure``, Node objects in the API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from box.apiserver import PODS, SECRETS, ApiError, ApiServer, now_iso

CONFIGMAPS = ("", "v1", "configmaps")

log = logging.getLogger("box.kubelet")


@dataclass
class _Running:
    pod: str
    namespace: str
    node: str
    proc: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    started: str = ""
    since: float = field(default_factory=time.monotonic)
    terminating: bool = False


@dataclass
class Node:
    name: str
    capacity: int
    alive: bool = True


@dataclass
class Kubelets:
    """The scheduler plus one kubelet per node, all in the harness's event loop."""

    api: ApiServer
    workdir: Path
    nodes: list[Node] = field(default_factory=lambda: [Node("node-a", 2), Node("node-b", 2)])
    grace_cap: float = 15.0
    """Longest wait between SIGTERM and SIGKILL (the Job asks for minutes; scenarios cannot wait)."""
    node_lost_after: float = 1.0
    """Seconds before the node lifecycle controller gives up on a lost node's pods."""
    node_replacement_after: float = 2.0
    """Seconds before a replacement node joins (cluster autoscaler)."""
    commands: dict[str, list[str]] = field(default_factory=dict)
    """Map a container command to a local argv prefix (e.g. a fake renderer in self-tests)."""
    base_env: dict[str, str] = field(default_factory=dict)
    """Variables every process gets besides the pod's own (PATH and friends)."""
    running: dict[tuple[str, str], _Running] = field(default_factory=dict)
    exits: list[tuple[str, int]] = field(default_factory=list)
    """Every container exit: (pod name, exit code)."""
    on_exit: Callable[[str, int], None] | None = None
    killed: list[str] = field(default_factory=list)
    """Pods whose running container :meth:`kill` signalled."""
    zombies: list[_Running] = field(default_factory=list)
    """Containers left running on partitioned nodes (see :meth:`partition_node`)."""
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.api.on_pod_delete = self._deleted
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._schedule()
            self._start_bound()
            await self.api.changed(0.2)
        await self.shutdown()

    async def shutdown(self) -> None:
        for r in [*self.running.values(), *self.zombies]:
            self._signal(r, signal.SIGCONT)
        for r in [*self.running.values(), *self.zombies]:
            if r.proc is not None and r.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(r.proc.pid, signal.SIGKILL)
        for r in [*self.running.values(), *self.zombies]:
            if r.task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(r.task, 10)
        for t in list(self._tasks):
            t.cancel()

    # ------------------------------------------------------------------ scheduler

    def _load(self, node: str) -> int:
        return sum(1 for p in self.api.select(PODS) if p["spec"].get("nodeName") == node
                   and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))

    def _schedule(self) -> None:
        for pod in self.api.select(PODS):
            if pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
                continue
            node = next((n for n in self.nodes if n.alive and self._load(n.name) < n.capacity), None)
            st = pod.get("status") or {}
            if node is None:
                cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": f"0/{len(self.nodes)} nodes are available: insufficient capacity."}
                if [c for c in st.get("conditions") or [] if c["type"] == "PodScheduled"] != [cond]:
                    pod["status"] = {**st, "phase": "Pending", "conditions": [cond]}
                    self._write(pod, status=True)
                continue
            pod["spec"]["nodeName"] = node.name
            with contextlib.suppress(ApiError):
                self.api.replace(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], pod, check_rv=False)
                pod = self.api.read(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"]) or pod
                pod["status"] = {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_iso()}]}
                self._write(pod, status=True)

    def _write(self, pod: dict[str, Any], *, status: bool) -> None:
        with contextlib.suppress(ApiError):
            self.api.replace(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], pod,
                             subresource="status" if status else None, check_rv=False)

    # ------------------------------------------------------------------ kubelet

    def _start_bound(self) -> None:
        for pod in self.api.select(PODS):
            key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
            node = pod["spec"].get("nodeName")
            if not node or key in self.running or (pod.get("status") or {}).get("phase") != "Pending":
                continue
            if pod["metadata"].get("deletionTimestamp") or not self._node(node).alive:
                continue
            try:
                argv, env, cwd = self._prepare(pod)
            except _ConfigError as e:
                self._waiting(pod, "CreateContainerConfigError", str(e))
                continue
            r = _Running(pod=key[1], namespace=key[0], node=node)
            self.running[key] = r
            r.task = asyncio.create_task(self._run(pod, r, argv, env, cwd))

    def _node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def _prepare(self, pod: dict[str, Any]) -> tuple[list[str], dict[str, str], Path]:
        spec = pod["spec"]
        container = spec["containers"][0]
        root = self.workdir / "pods" / pod["metadata"]["name"]
        mounts: dict[str, Path] = {}
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for vm in container.get("volumeMounts") or []:
            host = root / "volumes" / vm["name"]
            host.mkdir(parents=True, exist_ok=True)
            if "configMap" in volumes.get(vm["name"], {}):
                self._project_configmap(pod, volumes[vm["name"]]["configMap"], host)
            mounts[vm["mountPath"].rstrip("/") or "/"] = host
        env = dict(self.base_env)
        for item in container.get("env") or []:
            env[item["name"]] = self._env_value(pod, item)
        for k, v in list(env.items()):
            for mpath, host in mounts.items():
                if v == mpath or v.startswith(mpath + "/"):
                    env[k] = str(host) + v[len(mpath):]
        command = list(container.get("command") or [])
        if not command:
            raise _ConfigError("the harness needs an explicit container command")
        prefix = self.commands.get(command[0])
        if prefix is None:
            exe = shutil.which(command[0], path=str(Path(sys.executable).parent)) or shutil.which(command[0])
            if exe is None:
                raise _ConfigError(f"executable {command[0]!r} not found")
            prefix = [exe]
        argv = [*prefix, *command[1:], *(container.get("args") or [])]
        root.mkdir(parents=True, exist_ok=True)
        return argv, env, root

    def _project_configmap(self, pod: dict[str, Any], source: dict[str, Any], host: Path) -> None:
        """A ``configMap`` volume: its keys (or the listed ``items``) as files; missing: the pod waits."""
        cm = self.api.read(CONFIGMAPS, pod["metadata"]["namespace"], source["name"])
        if cm is None:
            raise _ConfigError(f'configmap "{source["name"]}" not found')
        data = cm.get("data") or {}
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] not in data:
                raise _ConfigError(f'configmap "{source["name"]}" has no key {item["key"]}')
            (host / item["path"]).write_text(data[item["key"]])

    def _env_value(self, pod: dict[str, Any], item: dict[str, Any]) -> str:
        if "value" in item:
            return str(item["value"])
        src = item.get("valueFrom") or {}
        if "secretKeyRef" in src:
            ref = src["secretKeyRef"]
            secret = self.api.read(SECRETS, pod["metadata"]["namespace"], ref["name"])
            if secret is None:
                raise _ConfigError(f'secret "{ref["name"]}" not found')
            if ref["key"] in (secret.get("data") or {}):
                return base64.b64decode(secret["data"][ref["key"]]).decode()
            if ref["key"] in (secret.get("stringData") or {}):
                return str(secret["stringData"][ref["key"]])
            raise _ConfigError(f'couldn\'t find key {ref["key"]} in Secret {ref["name"]}')
        if "fieldRef" in src:
            path = src["fieldRef"]["fieldPath"]
            m = re.match(r"metadata\.(annotations|labels)\['(.+)'\]$", path)
            if m:
                return str((pod["metadata"].get(m[1]) or {}).get(m[2], ""))
            return str({"metadata.name": pod["metadata"]["name"],
                        "metadata.namespace": pod["metadata"]["namespace"],
                        "metadata.uid": pod["metadata"]["uid"],
                        "spec.nodeName": pod["spec"].get("nodeName", "")}[path])
        raise _ConfigError(f"unsupported env source in {item['name']}")

    def _waiting(self, pod: dict[str, Any], reason: str, message: str) -> None:
        st = pod.get("status") or {}
        cs = [{"name": pod["spec"]["containers"][0]["name"], "ready": False, "restartCount": 0,
               "state": {"waiting": {"reason": reason, "message": message}}}]
        if st.get("containerStatuses") != cs:
            pod["status"] = {**st, "containerStatuses": cs}
            self._write(pod, status=True)

    async def _run(self, pod: dict[str, Any], r: _Running, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        name = pod["spec"]["containers"][0]["name"]
        logpath = self.workdir / "logs" / f"{r.namespace}_{r.pod}.log"
        with open(logpath, "ab") as logf:
            r.proc = await asyncio.create_subprocess_exec(
                *argv, env=env, cwd=cwd, stdout=logf, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        r.started = now_iso()
        fresh = self.api.read(PODS, r.namespace, r.pod)
        if fresh is not None and self._node(r.node).alive:
            ready = {"type": "Ready", "status": "True", "lastTransitionTime": r.started}
            fresh["status"] = {
                **(fresh.get("status") or {}), "phase": "Running", "startTime": r.started,
                "conditions": [*[c for c in (fresh.get("status") or {}).get("conditions") or []
                                 if c["type"] not in ("Ready", "ContainersReady")],
                               ready, {**ready, "type": "ContainersReady"}],
                "containerStatuses": [{"name": name, "ready": True, "restartCount": 0, "started": True,
                                       "state": {"running": {"startedAt": r.started}}}]}
            self._write(fresh, status=True)
            if fresh["metadata"].get("deletionTimestamp"):  # deleted while starting
                self._deleted(fresh)
        code = await r.proc.wait()
        exit_code = code if code >= 0 else 128 - code
        self.exits.append((r.pod, exit_code))
        if self.on_exit is not None:
            self.on_exit(r.pod, exit_code)
        if not self._node(r.node).alive:
            return  # a lost node reports nothing; the node lifecycle controller takes over
        fresh = self.api.read(PODS, r.namespace, r.pod)
        if fresh is not None:
            fresh["status"] = {
                **(fresh.get("status") or {}),
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "conditions": [{**c, "status": "False"} if c["type"] in ("Ready", "ContainersReady") else c
                               for c in (fresh.get("status") or {}).get("conditions") or []],
                "containerStatuses": [{"name": name, "ready": False, "restartCount": 0, "started": False,
                                       "state": {"terminated": {
                                           "exitCode": exit_code, "startedAt": r.started, "finishedAt": now_iso(),
                                           "reason": "Completed" if exit_code == 0 else "Error"}}}]}
            self._write(fresh, status=True)
            if fresh["metadata"].get("deletionTimestamp"):
                self.api.remove_pod(r.namespace, r.pod)
        self.running.pop((r.namespace, r.pod), None)

    def _deleted(self, pod: dict[str, Any]) -> None:
        """Graceful deletion: SIGTERM now, SIGKILL after the grace period."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        r = self.running.get(key)
        if r is None or r.proc is None:
            if r is None:  # never started: nothing to stop
                fresh = self.api.read(PODS, *key)
                if fresh is not None:
                    fresh["status"] = {**(fresh.get("status") or {}), "phase": "Failed"}
                    self._write(fresh, status=True)
                    self.api.remove_pod(*key)
            return
        if r.proc.returncode is not None or r.terminating:
            return
        r.terminating = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(r.proc.pid, signal.SIGTERM)
        grace = min(float(pod["metadata"].get("deletionGracePeriodSeconds") or 30), self.grace_cap)
        self._spawn(self._kill_later(r, grace))

    async def _kill_later(self, r: _Running, grace: float) -> None:
        assert r.proc is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(r.proc.wait()), grace)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(r.proc.pid, signal.SIGKILL)

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ faults

    def running_pods(self) -> list[_Running]:
        return [r for r in self.running.values() if r.proc is not None and r.proc.returncode is None
                and self._node(r.node).alive and not r.terminating]

    def preempt(self, r: _Running, *, reason: str = "TerminationByKubelet") -> bool:
        """Spot reclaim of one pod: DisruptionTarget, then graceful deletion (SIGTERM). False: already going."""
        pod = self.api.read(PODS, r.namespace, r.pod)
        if pod is None or r.terminating or pod["metadata"].get("deletionTimestamp"):
            return False
        conds = [c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True", "reason": reason,
                      "message": "Pod was terminated in response to imminent node shutdown.",
                      "lastTransitionTime": now_iso()})
        pod["status"] = {**(pod.get("status") or {}), "conditions": conds}
        self._write(pod, status=True)
        with contextlib.suppress(ApiError):
            self.api.delete_obj(PODS, r.namespace, r.pod)
        return True

    def kill(self, r: _Running) -> bool:
        """SIGKILL the pod's processes (a crash: exit code 137, no DisruptionTarget).

        True only when the container was still running and got the signal; a process that had
        already exited (or is exiting unreaped) is not a crash and returns False. Use
        :meth:`crashed` afterwards to know whether the kill is what ended it (exit 137).
        """
        if r.proc is None or r.proc.returncode is not None or self._exited(r.proc.pid):
            return False
        try:
            os.killpg(r.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.killed.append(r.pod)
        return True

    def crashed(self) -> list[str]:
        """Pods that :meth:`kill` signalled and whose container then exited 137 (really killed)."""
        codes = dict(self.exits)
        return [p for p in self.killed if codes.get(p) == 128 + signal.SIGKILL]

    @staticmethod
    def _exited(pid: int) -> bool:
        """Has the process ended (a zombie waiting to be reaped counts as ended)?"""
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True

    def partition_node(self, name: str) -> list[_Running]:
        """The node is cut off from the control plane, not from S3: its kubelet reports nothing more
        (the node lifecycle controller evicts its pods as for a lost node and the Job controller
        replaces them), but its containers keep running and uploading: zombie writers. Returns them;
        :meth:`freeze`/:meth:`thaw` control when they proceed, :meth:`reap` ends them."""
        node = self._node(name)
        node.alive = False
        zombies = [r for r in self.running.values() if r.node == name and r.proc is not None
                   and r.proc.returncode is None]
        self.zombies.extend(zombies)
        self._spawn(self._evict_lost(node))
        return zombies

    @staticmethod
    def _signal(r: _Running, sig: int) -> bool:
        if r.proc is None or r.proc.returncode is not None:
            return False
        try:
            os.killpg(r.proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def freeze(self, r: _Running) -> bool:
        """SIGSTOP the pod's processes (a stalled, partitioned node)."""
        return self._signal(r, signal.SIGSTOP)

    def thaw(self, r: _Running) -> bool:
        return self._signal(r, signal.SIGCONT)

    async def reap(self, rs: list[_Running], timeout: float) -> list[int | None]:
        """Wait up to ``timeout`` s for each process to exit, then SIGKILL it; the exit codes (None: killed)."""
        codes: list[int | None] = []
        for r in rs:
            if r.proc is None:
                codes.append(None)
                continue
            try:
                codes.append(await asyncio.wait_for(asyncio.shield(r.proc.wait()), timeout))
            except TimeoutError:
                self._signal(r, signal.SIGCONT)
                self._signal(r, signal.SIGKILL)
                await r.proc.wait()
                codes.append(None)
        return codes

    def lose_node(self, name: str) -> list[str]:
        """The node disappears with all its pods; returns the pods that were on it."""
        node = self._node(name)
        node.alive = False
        victims = [r for r in self.running.values() if r.node == name]
        for r in victims:
            self.kill(r)
        self._spawn(self._evict_lost(node))
        return [r.pod for r in victims]

    async def _evict_lost(self, node: Node) -> None:
        await asyncio.sleep(self.node_lost_after)
        for pod in self.api.select(PODS):
            if pod["spec"].get("nodeName") != node.name:
                continue
            st = pod.get("status") or {}
            conds = [c for c in st.get("conditions") or [] if c["type"] not in ("DisruptionTarget", "Ready")]
            conds += [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                       "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": now_iso()},
                      {"type": "Ready", "status": "False", "reason": "NodeLost", "lastTransitionTime": now_iso()}]
            if st.get("phase") not in ("Succeeded", "Failed"):
                pod["status"] = {**st, "phase": "Failed", "conditions": conds}
                self._write(pod, status=True)
            self.api.remove_pod(pod["metadata"]["namespace"], pod["metadata"]["name"])
            self.running.pop((pod["metadata"]["namespace"], pod["metadata"]["name"]), None)
        await asyncio.sleep(self.node_replacement_after)
        self.nodes.append(Node(f"{node.name}-r{len(self.nodes)}", node.capacity))

    def pod_logs(self) -> dict[str, str]:
        return {p.name: p.read_text(errors="replace") for p in sorted((self.workdir / "logs").glob("*.log"))}


class _ConfigError(Exception):
    pass


