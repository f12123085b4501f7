"""The only module that calls the Kubernetes API: a small async REST adapter (aiohttp).

It decides nothing: create (409 means it already exists: success), get, list, merge-patch,
delete (404 means already gone: success). Credentials come from kopf's login helpers (service
account, then kubeconfig, then the kubernetes client). Every request is counted per
``(verb, resource)`` so the benchmark and the metrics can report API calls per shard.

``API_CALLS`` lists every (apiGroup, resource, verb) the operator needs, including what kopf
itself does for us (watching, patching its annotations, peering, events); the RBAC test checks
each has a rule in manifests/ and in the Helm chart.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import inspect
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from synth_contract.api import GROUP

RETRYABLE = frozenset({429, 500, 502, 503, 504})
"""Statuses retried in place (a few times) before the reconciliation fails and kopf backs off."""
RETRIES = 3
MAX_RETRY_DELAY = 10.0


def retry_delay(retry_after: str | None, attempt: int) -> float:
    """Seconds to wait before retrying: the server's Retry-After if given, else 0.5 s doubling; capped."""
    try:
        told = float(retry_after) if retry_after is not None else None
    except ValueError:
        told = None
    delay = told if told is not None and told >= 0 else 0.5 * 2**attempt
    return min(delay, MAX_RETRY_DELAY)


API_CALLS: list[tuple[str, str, str]] = [
    # SynthDataset: kopf watches and patches (annotations, finalizers); we patch status only.
    (GROUP, "synthdatasets", "get"),
    (GROUP, "synthdatasets", "list"),
    (GROUP, "synthdatasets", "watch"),
    (GROUP, "synthdatasets", "patch"),
    (GROUP, "synthdatasets/status", "patch"),
    # RenderBatch: the sliding window.
    (GROUP, "renderbatches", "get"),
    (GROUP, "renderbatches", "list"),
    (GROUP, "renderbatches", "watch"),
    (GROUP, "renderbatches", "create"),
    (GROUP, "renderbatches", "patch"),
    (GROUP, "renderbatches", "delete"),
    (GROUP, "renderbatches/status", "patch"),
    # Children carry blockOwnerDeletion: true. Where OwnerReferencesPermissionEnforcement is on
    # (OpenShift by default) that needs update on the owner's finalizers (kueue#1485).
    (GROUP, "synthdatasets/finalizers", "update"),
    (GROUP, "renderbatches/finalizers", "update"),
    # Jobs of batch attempts and their Pods (read only).
    ("batch", "jobs", "get"),
    ("batch", "jobs", "list"),
    ("batch", "jobs", "create"),
    ("batch", "jobs", "patch"),
    ("batch", "jobs", "delete"),
    ("", "configmaps", "create"),  # the spec of each Job attempt, mounted by its pods (not in their env)
    ("", "configmaps", "get"),  # a 409 on that create: whose is the one there?
    ("", "pods", "list"),
    ("", "pods", "watch"),  # kopf: pods disrupted or deleted between two batch ticks (cluster/pods.py)
    # Cost: the capacity type (spot or on-demand) of the node a pod ran on, from its labels.
    ("", "nodes", "get"),
    # Events (ours and kopf's).
    ("", "events", "create"),
    # kopf: CRD discovery, namespaces for -A, peering for several replicas.
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
    ("kopf.dev", "clusterkopfpeerings", "get"),
    ("kopf.dev", "clusterkopfpeerings", "list"),
    ("kopf.dev", "clusterkopfpeerings", "watch"),
    ("kopf.dev", "clusterkopfpeerings", "patch"),
    ("kopf.dev", "kopfpeerings", "get"),
    ("kopf.dev", "kopfpeerings", "list"),
    ("kopf.dev", "kopfpeerings", "watch"),
    ("kopf.dev", "kopfpeerings", "patch"),
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    """An API resource; ``namespace=None`` in ``path`` addresses a cluster-scoped one."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        scope = f"/namespaces/{quote(namespace)}" if namespace is not None else ""
        out = f"{base}{scope}/{self.plural}"
        if name:
            out += f"/{quote(name)}"
        if subresource:
            out += f"/{subresource}"
        return out


DATASETS = Resource(GROUP, "v1alpha1", "synthdatasets")
BATCHES = Resource(GROUP, "v1alpha1", "renderbatches")
JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
CONFIGMAPS = Resource("", "v1", "configmaps")
NODES = Resource("", "v1", "nodes")  # cluster-scoped: only read by ``Kube.node_labels``


class KubeError(RuntimeError):
    """An unexpected API answer (anything but the 404/409 cases handled as success)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Conflict(KubeError):
    """409 on a write preconditioned on a ``resourceVersion``: the object changed since it was
    read; the caller re-reads it and decides again (issue #22 item 6)."""


class Kube:
    """Async Kubernetes REST client with request counting."""

    def __init__(
        self,
        server: str,
        *,
        headers: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | bool | None = None,
        timeout: float = 30.0,
        relogin: Callable[[], Any] | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self._headers = dict(headers or {})
        self._ssl = ssl_context
        self._relogin = relogin
        self.unauthorized = 0
        """Consecutive requests refused with 401 even after a fresh login (0 after any other answer)."""
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._node_labels: dict[str, dict[str, str]] = {}
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()

    @classmethod
    def from_connection(cls, info: Any, *, relogin: Callable[[], Any] | None = None) -> Kube:
        """Build from a ``kopf.ConnectionInfo``; ``relogin`` returns a fresh one after a 401."""
        server, headers, ctx = _credentials(info)
        return cls(server, headers=headers, ssl_context=ctx, relogin=relogin)

    async def _refresh(self) -> bool:
        """Log in again (re-read the service-account token, re-run the exec plugin); False if impossible."""
        if self._relogin is None:
            return False
        try:
            info = self._relogin()
            if inspect.isawaitable(info):
                info = await info
            _, self._headers, self._ssl = _credentials(info)
        except Exception as exc:  # a failed login is reported as the 401 that caused it
            logger.warning("re-login after 401 failed: %s", exc)
            return False
        if self._session is not None:
            await self._session.close()
            self._session = None
        logger.info("credentials refreshed after 401 Unauthorized")
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        verb: str,
        resource: Resource,
        path: str,
        *,
        method: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        ok_missing: bool = False,
        ok_conflict: bool = False,
    ) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        headers = {"Content-Type": content_type} if body is not None else {}
        refreshed = False
        for attempt in range(RETRIES + 1):
            self.calls[(verb, resource.plural)] += 1
            if self._session is None:  # closed by a re-login
                self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
            async with self._session.request(
                method, self.server + path, json=body, params=params, headers=headers,
                ssl=True if self._ssl is None else self._ssl
            ) as resp:
                data = await resp.json(content_type=None) if resp.content_length != 0 else None
                status = resp.status
            if status == 401:
                # Rotated token (bound service-account tokens, exec plugins): log in again, retry once.
                if not refreshed and attempt < RETRIES and await self._refresh():
                    refreshed = True
                    continue
                self.unauthorized += 1
                msg = data.get("message") if isinstance(data, dict) else str(data)
                raise KubeError(401, f"{method} {path}: {msg}")
            self.unauthorized = 0
            if status == 404 and ok_missing:
                return 404, None
            if status == 409 and ok_conflict:
                return 409, data
            if status in RETRYABLE and attempt < RETRIES:
                # API priority and fairness (429) or a passing server error: wait as told, bounded.
                await asyncio.sleep(retry_delay(resp.headers.get("Retry-After"), attempt))
                continue
            if status >= 400:
                msg = data.get("message") if isinstance(data, dict) else str(data)
                raise (Conflict if status == 409 else KubeError)(status, f"{method} {path}: {msg}")
            return status, data
        raise AssertionError("unreachable")  # the loop returns or raises

    async def node_labels(self, name: str) -> dict[str, str] | None:
        """A node's labels (cached: the capacity-type labels of a node never change), None if gone
        or not readable (cost then falls back to the batch's capacity type)."""
        if name in self._node_labels:
            return self._node_labels[name]
        try:
            _, data = await self._request("get", NODES, NODES.path(None, name), method="GET",
                                          ok_missing=True)
        except KubeError as exc:
            logger.debug("cannot read node %s: %s", name, exc)
            return None
        if not isinstance(data, dict):
            return None
        labels = {str(k): str(v) for k, v in ((data.get("metadata") or {}).get("labels") or {}).items()}
        if len(self._node_labels) > 4096:  # bounded: node names churn on autoscaled pools
            self._node_labels.clear()
        self._node_labels[name] = labels
        return labels

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        _, data = await self._request("get", resource, resource.path(namespace, name), method="GET",
                                      ok_missing=True)
        return data if isinstance(data, dict) else None

    async def list(
        self, resource: Resource, namespace: str, *, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a namespace (server-side label selector, re-checked client-side)."""
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        _, data = await self._request("list", resource, resource.path(namespace), method="GET", params=params)
        items = list((data or {}).get("items") or [])
        if labels:
            items = [i for i in items
                     if all(((i.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in labels.items())]
        return items

    async def create(self, resource: Resource, namespace: str, body: dict[str, Any]) -> bool:
        """Create; True when created, False when it already existed (409 is success)."""
        status, _ = await self._request("create", resource, resource.path(namespace), method="POST", body=body,
                                        ok_conflict=True)
        return status != 409

    async def patch(
        self, resource: Resource, namespace: str, name: str, patch: dict[str, Any], *, status: bool = False,
        resource_version: str | None = None,
    ) -> dict[str, Any] | None:
        """JSON merge patch of the object or its status; None when the object is gone.

        With ``resource_version``, the patch applies only to that version of the object (the
        API server's optimistic concurrency): :class:`Conflict` when it has changed since.
        """
        if resource_version:
            patch = {**patch, "metadata": {**(patch.get("metadata") or {}), "resourceVersion": resource_version}}
        verb = "patch/status" if status else "patch"
        _, data = await self._request(
            verb, resource, resource.path(namespace, name, "status" if status else None), method="PATCH",
            body=patch, content_type="application/merge-patch+json", ok_missing=True)
        return data if isinstance(data, dict) else None

    async def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Delete with background propagation (children go too); False when already gone."""
        status, _ = await self._request(
            "delete", resource, resource.path(namespace, name), method="DELETE",
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            ok_missing=True)
        return status != 404


def _credentials(info: Any) -> tuple[str, dict[str, str], ssl.SSLContext | bool | None]:
    """Server, auth headers and TLS context of a ``kopf.ConnectionInfo``."""
    headers: dict[str, str] = {}
    if info.token:
        headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
    elif info.username and info.password:
        raw = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
        headers["Authorization"] = f"Basic {raw}"
    ctx: ssl.SSLContext | bool | None = None
    if str(info.server).startswith("https"):
        if info.insecure:
            ctx = False
        else:
            ctx = ssl.create_default_context(
                cafile=os.fspath(info.ca_path) if info.ca_path else None,
                cadata=_text(info.ca_data) if info.ca_data else None,
            )
            cert = _as_file(info.certificate_path, info.certificate_data)
            key = _as_file(info.private_key_path, info.private_key_data)
            if cert:
                ctx.load_cert_chain(cert, key)
    return str(info.server), headers, ctx


def _text(data: str | bytes) -> str:
    return data.decode() if isinstance(data, bytes) else data


def _as_file(path: Any, data: str | bytes | None) -> str | None:
    if path:
        return os.fspath(path)
    if not data:
        return None
    with tempfile.NamedTemporaryFile("wb", delete=False, suffix=".pem") as fh:
        fh.write(data if isinstance(data, bytes) else data.encode())
        return fh.name


def login(*, settings: Any) -> Any:
    """Credentials as kopf's ``ConnectionInfo``: in-cluster service account, then kubeconfig.

    kopf's own kubeconfig reader is used when it yields credentials (or a plain-http server);
    otherwise the kubernetes client handles the rest (exec plugins of EKS/GKE/AKS kubeconfigs).
    """
    import kopf

    info = kopf.login_with_service_account(settings=settings)
    if info is not None:
        return info
    info = kopf.login_with_kubeconfig(settings=settings)
    if info is not None and (info.token or info.certificate_path or info.certificate_data or info.username
                             or str(info.server).startswith("http://")):
        return info
    info = kopf.login_via_client(settings=settings, logger=logger)
    if info is None:
        raise kopf.LoginError("no Kubernetes credentials: neither in-cluster, nor kubeconfig, nor client")
    return info


def connect(settings: Any) -> Kube:
    """A client logged in the same way as kopf itself (see :func:`login`), which logs in again on 401."""
    return Kube.from_connection(login(settings=settings), relogin=lambda: login(settings=settings))
