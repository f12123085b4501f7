"""KMock with the fidelity the operator tests need, served from its own thread.

Extensions over ``kmock.KubernetesEmulator`` (documented gaps of the emulator):
* creation fills ``metadata.uid``, ``creationTimestamp``, ``generation``, ``resourceVersion``
  and resolves ``generateName`` (Events use it);
* garbage collection: objects whose owner (by uid) is gone are deleted, as the Kubernetes
  garbage collector does for background cascading deletion;
* resources are declared from the generated CRDs in ``crds/`` plus the core ones we use.

The emulator runs in a dedicated thread with its own event loop, so the operator (in
``kopf.testing.KopfRunner``'s thread) and the test (plain synchronous code acting as the Job
controller through HTTP) never block each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kmock
import yaml
from kmock._internal import enums

CRDS = Path(__file__).resolve().parents[2] / "crds"
CORE = {
    "batch/v1/jobs": ("Job", {"status"}),
    "v1/pods": ("Pod", {"status"}),
    "v1/events": ("Event", set()),
    "v1/configmaps": ("ConfigMap", set()),
}
CLUSTER = {
    "v1/namespaces": "Namespace",
    "apiextensions.k8s.io/v1/customresourcedefinitions": "CustomResourceDefinition",
}


class FidelityEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """KubernetesEmulator plus uids, generateName and owner-reference garbage collection."""

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and request.action == enums.action.CREATE and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta.setdefault("generation", 1)
            meta.setdefault("resourceVersion", str(time.monotonic_ns()))
        return await super()._handle(request)

    async def collect_garbage(self) -> int:
        """Delete objects whose owners are gone (honouring finalizers). Returns how many."""
        count = 0
        async with self._lock:
            live = {(o.get("metadata") or {}).get("uid") for o in self._objects.values() if not o.deleted}
            for key, obj in list(self._objects.items()):
                if obj.deleted:
                    continue
                meta = obj.get("metadata") or {}
                owners = [r.get("uid") for r in meta.get("ownerReferences") or []]
                if not owners or any(uid in live for uid in owners):
                    continue
                if meta.get("finalizers"):
                    if not meta.get("deletionTimestamp"):
                        obj.patch({"metadata": {"deletionTimestamp": datetime.now(UTC).isoformat()}})
                        await self._buses[key[0]].put({"type": "MODIFIED", "object": obj.raw})
                    continue
                raw = obj.raw
                obj.delete()
                await self._buses[key[0]].put({"type": "DELETED", "object": raw})
                count += 1
        return count


def declare_resources(emu: Any) -> None:
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        names = crd["spec"]["names"]
        for v in crd["spec"]["versions"]:
            key = f"{crd['spec']['group']}/{v['name']}/{names['plural']}"
            emu.resources[key] = kmock.ResourceInfo(
                kind=names["kind"], singular=names.get("singular"), namespaced=True,
                shortnames=set(names.get("shortNames", [])), categories=set(names.get("categories", [])),
                subresources=set(v.get("subresources", {})),
                verbs={"get", "list", "watch", "create", "update", "patch", "delete"})
    for key, (kind, sub) in CORE.items():
        emu.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=True, subresources=sub,
                                                verbs={"get", "list", "watch", "create", "patch", "delete"})
    for key, kind in CLUSTER.items():
        emu.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=False, verbs={"get", "list", "watch"})


class ThreadedKMock:
    """The emulator on a random port in a background thread, with a small sync HTTP client."""

    def __init__(self, *, gc_interval: float = 0.1) -> None:
        self.gc_interval = gc_interval
        self.url = ""
        self.emulator: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.gc_enabled = True

    def __enter__(self) -> ThreadedKMock:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("KMock did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with FidelityEmulator() as emu, kmock.Server(emu) as server:
            declare_resources(emu)
            self.emulator = emu
            self.url = str(server.url).rstrip("/")
            self._seed(emu)
            self._ready.set()
            while not self._stop.is_set():
                if self.gc_enabled:
                    await emu.collect_garbage()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.gc_interval)

    @staticmethod
    def _seed(emu: Any) -> None:
        """The namespace the tests use and the CRDs (kopf lists both at start-up)."""
        emu.objects[kmock.resource("v1", "namespaces"), None, "ns"] = {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "uid": str(uuid.uuid4())}}
        for path in sorted(CRDS.glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            key = (kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None,
                   crd["metadata"]["name"])
            emu.objects[key] = crd

    # ------------------------------------------------------------------ sync client

    def request(self, method: str, path: str, body: Any = None, *, ctype: str = "application/json") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": ctype} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def requests(self) -> list[Any]:
        """Every request the emulator received so far (kmock.Request objects)."""
        return list(self.emulator)

    def items(self, path: str) -> list[dict[str, Any]]:
        return list((self.request("GET", path) or {}).get("items") or [])

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PATCH", path, body, ctype="application/merge-patch+json")

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "kmock", "user": {}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock", "namespace": "ns"}}],
        }))
        return path

