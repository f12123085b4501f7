"""A stateful Kubernetes API server for the run-in-a-box harness, built on KMock's scaffold.

KMock's ``KubernetesScaffold`` serves discovery (``/api``, ``/apis``, ``/apis/{group}/{version}``)
and renders errors as ``Status`` objects; its ``KubernetesEmulator`` stores objects but has no
resourceVersion, uid or generation, ignores label selectors, replays every object on every watch,
merges ``/status`` patches into the whole object and never garbage-collects. Our operator and the
simulated controllers rely on all of those, so this module keeps KMock for HTTP and discovery and
replaces the object store with one that behaves like the real API server where it matters:

* ``metadata.resourceVersion`` (one global counter), ``uid``, ``generation`` (bumped on changes
  outside metadata and status), ``creationTimestamp``, ``generateName``;
* list and watch with ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, exists, ``!key``)
  and ``fieldSelector`` on ``metadata.name``/``metadata.namespace``; watch from a
  ``resourceVersion`` replays only later events (410 Gone when compacted), ``timeoutSeconds``;
* the ``status`` subresource: a patch of the main resource ignores ``status``, a patch of
  ``/status`` changes only ``status``; merge-patch, JSON-patch (with ``test``), strategic merge
  (approximated as merge-patch: lists are replaced, not merged by key) and PUT with optimistic
  concurrency (409 on a stale ``resourceVersion``);
* deletion with finalizers (``deletionTimestamp``), graceful deletion of scheduled Pods (the
  simulated kubelet removes them once their process has exited), garbage collection of dependents
  by ``ownerReferences`` with ``propagationPolicy`` (the batch/v1 Job default is Orphan, as in the
  real API);
* fault injection for the operator's requests: concurrent writers just before a preconditioned
  write (every write bumps ``resourceVersion``, so the precondition then gets a genuine 409/422,
  counted as ``conflict``), 429 with ``Retry-After``, 500, and watch streams cut mid-way, each
  counted in :attr:`ApiServer.injected` (answers with status >= 400 are in :attr:`ApiServer.audit`).

Validation is limited to what every object gets: names must be RFC 1123 subdomains, label keys
and values must be valid (422 Invalid otherwise). It does not do: authentication or RBAC,
admission (no CRD schema or CEL validation, no defaults),
server-side apply field ownership, watch bookmarks, pagination (``limit``/``continue``).

The harness's own controllers (Job controller, kubelet) run in the same event loop and use the
in-process methods (:meth:`ApiServer.create`, :meth:`ApiServer.patch`, ...), which emit the same
watch events as HTTP requests do and are never subject to fault injection.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import copy
import itertools
import json
import random
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import attrs
from kmock import KubernetesScaffold, Request, ResourceInfo

Key = tuple[str, str, str]
"""A resource: (group, version, plural); the core group is ''."""
ObjKey = tuple[Key, str | None, str]
"""An object: (resource, namespace or None, name)."""

PODS: Key = ("", "v1", "pods")
SECRETS: Key = ("", "v1", "secrets")
EVENTS: Key = ("", "v1", "events")
JOBS: Key = ("batch", "v1", "jobs")
SDS: Key = ("parallelsynth.io", "v1alpha1", "synthdatasets")
RB: Key = ("parallelsynth.io", "v1alpha1", "renderbatches")

_DEFAULT_RESOURCES: dict[Key, dict[str, Any]] = {
    PODS: {"kind": "Pod", "namespaced": True, "subresources": {"status"}},
    SECRETS: {"kind": "Secret", "namespaced": True, "subresources": set()},
    EVENTS: {"kind": "Event", "namespaced": True, "subresources": set()},
    ("", "v1", "namespaces"): {"kind": "Namespace", "namespaced": False, "subresources": {"status"}},
    ("", "v1", "configmaps"): {"kind": "ConfigMap", "namespaced": True, "subresources": set()},
    ("events.k8s.io", "v1", "events"): {"kind": "Event", "namespaced": True, "subresources": set()},
    JOBS: {"kind": "Job", "namespaced": True, "subresources": {"status"}},
    ("coordination.k8s.io", "v1", "leases"): {"kind": "Lease", "namespaced": True, "subresources": set()},
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"): {
        "kind": "CustomResourceDefinition", "namespaced": False, "subresources": {"status"}},
    ("kopf.dev", "v1", "clusterkopfpeerings"): {"kind": "ClusterKopfPeering", "namespaced": False,
                                                "subresources": set()},
    ("kopf.dev", "v1", "kopfpeerings"): {"kind": "KopfPeering", "namespaced": True, "subresources": set()},
    SDS: {"kind": "SynthDataset", "namespaced": True, "subresources": {"status"},
          "shortnames": {"sds"}, "categories": {"synth"}},
    RB: {"kind": "RenderBatch", "namespaced": True, "subresources": {"status"},
         "shortnames": {"rb"}, "categories": {"synth"}},
}
_VERBS = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
_MAX_EVENTS = 50_000
"""Watch events kept for resuming watches; older resourceVersions get 410 Gone."""


class ApiError(Exception):
    """An API error rendered as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.headers = code, reason, message, headers or {}


@dataclass
class ApiFaults:
    """Faults injected into the operator's HTTP requests (never into in-process calls)."""

    conflict_rate: float = 0.0
    """Probability that another writer modifies the object just before a PATCH/PUT that carries a
    resourceVersion precondition (``metadata.resourceVersion`` in a PUT or merge-patch body, or a
    JSON-patch ``test`` of ``/metadata/resourceVersion``) is applied: the request then fails as on a
    real server (409 Conflict, or 422 for the ``test``), counted as ``conflict``. Writes without a
    precondition are left alone: another writer's change could not make them fail, so spending the
    fault on them would prove nothing."""
    throttle_rate: float = 0.0
    """Probability that any request gets 429 Too Many Requests with Retry-After."""
    error_rate: float = 0.0
    """Probability that a non-watch request gets 500 Internal Server Error."""
    watch_drop_rate: float = 0.0
    """Probability, per event sent, that a watch stream is cut right after it."""
    retry_after_seconds: int = 1
    max_each: int = 1_000_000
    """Upper bound per fault kind (keeps a scenario's injections bounded)."""
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _kind_list(kind: str) -> str:
    return f"{kind}List"


# --------------------------------------------------------------------------- selectors

_SEL = re.compile(
    r"^\s*(?P<neg>!)?(?P<key>[A-Za-z0-9_./-]+)\s*(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[^,]*))?\s*$"
)


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def label_selector_matches(selector: str | None, labels: dict[str, str]) -> bool:
    """Does ``labels`` satisfy a Kubernetes label selector string?"""
    if not selector:
        return True
    for term in _split_selector(selector):
        m = _SEL.match(term)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
        key, op, val, neg = m["key"], (m["op"] or "").strip(), (m["val"] or "").strip(), m["neg"]
        if neg:
            if key in labels:
                return False
        elif not op:
            if key not in labels:
                return False
        elif op in ("=", "=="):
            if labels.get(key) != val:
                return False
        elif op == "!=":
            if labels.get(key) == val:
                return False
        else:
            values = {v.strip() for v in val.strip("()").split(",")}
            if op == "in" and labels.get(key) not in values:
                return False
            if op == "notin" and labels.get(key) in values:
                return False
    return True


def field_selector_matches(selector: str | None, obj: dict[str, Any]) -> bool:
    if not selector:
        return True
    meta = obj.get("metadata", {})
    for term in selector.split(","):
        neg = "!=" in term
        key, _, val = term.replace("!=", "=").replace("==", "=").partition("=")
        actual = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}.get(
            key.strip(), _dig(obj, key.strip())
        )
        if (str(actual) == val.strip()) == neg:
            return False
    return True


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def _check_meta(meta: dict[str, Any]) -> None:
    """The API server's own metadata validation: object names and labels (422 Invalid)."""
    name = str(meta.get("name", ""))
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        raise ApiError(422, "Invalid", f"metadata.name: Invalid value: {name[:80]!r}: a lowercase RFC 1123 subdomain "
                       "must consist of lower case alphanumeric characters, '-' or '.'")
    for k, v in (meta.get("labels") or {}).items():
        prefix, _, lname = str(k).rpartition("/")
        if len(lname) > 63 or not _LABEL_NAME.match(lname) or (prefix and not _SUBDOMAIN.match(prefix)):
            raise ApiError(422, "Invalid", f"metadata.labels: Invalid value: {str(k)[:80]!r}: invalid label key")
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            raise ApiError(422, "Invalid", f"metadata.labels: Invalid value: {str(v)[:80]!r}: a valid label "
                           "value must be 63 characters or less, alphanumeric, '-', '_' or '.'")


# --------------------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``null`` deletes a key; lists are replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")] if path else []


def json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 JSON patch: add, remove, replace, test (enough for kopf and kubectl)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op["path"])
        parent: Any = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1] if parts else ""
        kind = op["op"]
        if kind == "test":
            cur = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if cur != op.get("value"):
                raise ApiError(422, "Invalid", f"the server rejected our request: test failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
        else:
            raise ApiError(422, "Invalid", f"unsupported JSON-patch op {kind!r}")
    return doc


# --------------------------------------------------------------------------- the server


@attrs.define(kw_only=True)
class ApiServer(KubernetesScaffold):
    """KMock's scaffold (HTTP, discovery, errors) with a faithful object store; see the module doc."""

    faults: ApiFaults = attrs.field(factory=ApiFaults)
    injected: dict[str, int] = attrs.field(factory=dict)
    """Counts of injected faults by kind: concurrent_write, throttle, error, watch_drop; and
    ``conflict``: preconditioned writes answered 409 Conflict / 422 (failed ``test``) because the
    object had changed (whoever changed it; AlreadyExists is not a conflict)."""
    kinds: dict[Key, dict[str, Any]] = attrs.field(factory=lambda: copy.deepcopy(_DEFAULT_RESOURCES))
    _store: dict[ObjKey, dict[str, Any]] = attrs.field(factory=dict, init=False)
    _log: list[tuple[int, Key, str, dict[str, Any]]] = attrs.field(factory=list, init=False)
    _rv: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1000), init=False)
    _last_rv: int = attrs.field(default=999, init=False)
    _changed: asyncio.Event | None = attrs.field(default=None, init=False)
    _propagation: dict[ObjKey, str] = attrs.field(factory=dict, init=False)
    on_pod_delete: Callable[[dict[str, Any]], None] | None = attrs.field(default=None)
    """Called when a scheduled, running Pod gets its deletionTimestamp (the kubelet's cue)."""
    audit: list[tuple[str, str, int]] = attrs.field(factory=list, init=False)
    """Every HTTP request from the operator: (method, path, status)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for (group, version, plural), info in self.kinds.items():
            self.resources[f"{group}/{version}/{plural}" if group else f"v1/{plural}"] = ResourceInfo(
                kind=info["kind"], namespaced=info["namespaced"], verbs=_VERBS,
                subresources=info["subresources"], shortnames=info.get("shortnames", set()),
                categories=info.get("categories", set()), singular=info["kind"].lower(),
            )

    # ------------------------------------------------------------------ in-process API

    def _bump(self) -> int:
        self._last_rv = next(self._rv)
        return self._last_rv

    def _emit(self, key: Key, kind: str, obj: dict[str, Any]) -> None:
        self._log.append((int(obj["metadata"]["resourceVersion"]), key, kind, copy.deepcopy(obj)))
        if len(self._log) > _MAX_EVENTS:
            del self._log[: len(self._log) - _MAX_EVENTS]
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout: float) -> None:
        """Wait until anything changes (or ``timeout`` seconds pass)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def read(self, key: Key, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self._store.get((key, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def select(
        self, key: Key, namespace: str | None = None, *, labels: str | None = None, fields: str | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for (k, ns, _), obj in self._store.items():
            if k != key or (namespace is not None and ns != namespace):
                continue
            if label_selector_matches(labels, obj["metadata"].get("labels") or {}) and field_selector_matches(
                fields, obj
            ):
                out.append(copy.deepcopy(obj))
        return out

    def create(self, key: Key, namespace: str | None, obj: dict[str, Any], *, keep_status: bool = True) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", "metadata.name or metadata.generateName is required")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if self.kinds.get(key, {}).get("namespaced", True):
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        _check_meta(meta)
        okey = (key, meta.get("namespace"), meta["name"])
        if okey in self._store:
            raise ApiError(409, "AlreadyExists", f'{key[2]} "{meta["name"]}" already exists')
        info = self.kinds.get(key, {})
        obj.setdefault("apiVersion", f"{key[0]}/{key[1]}" if key[0] else key[1])
        obj.setdefault("kind", info.get("kind", key[2].capitalize()))
        if not keep_status and "status" in info.get("subresources", ()):
            obj.pop("status", None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso(), generation=1,
                    resourceVersion=str(self._bump()))
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(k, None)
        self._store[okey] = obj
        self._emit(key, "ADDED", obj)
        return copy.deepcopy(obj)

    def replace(self, key: Key, namespace: str | None, name: str, new: dict[str, Any], *,
                subresource: str | None = None, check_rv: bool = True) -> dict[str, Any]:
        """Write a whole new object (PUT, or a computed patch), with the API's rules."""
        okey = (key, namespace, name)
        old = self._store.get(okey)
        if old is None:
            raise ApiError(404, "NotFound", f'{key[2]} "{name}" not found')
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        if check_rv and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {key[2]} "{name}": '
                           "the object has been modified; please apply your changes to the latest version")
        has_status = "status" in self.kinds.get(key, {}).get("subresources", ())
        new = copy.deepcopy(new)
        if subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            if has_status:
                if "status" in old:
                    result["status"] = copy.deepcopy(old["status"])
                else:
                    result.pop("status", None)
            meta = result.setdefault("metadata", {})
            # Immutable and server-owned metadata.
            for k in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
            if strip(result) != strip(old):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        result["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if result == old:
            return copy.deepcopy(old)  # no-op writes do not bump resourceVersion (as in the API)
        result["metadata"]["resourceVersion"] = str(self._bump())
        self._store[okey] = result
        meta = result["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and (
                key != PODS or self._pod_may_vanish(result)):
            self._remove(okey)
            return copy.deepcopy(result)
        self._emit(key, "MODIFIED", result)
        return copy.deepcopy(result)

    def patch_obj(self, key: Key, namespace: str | None, name: str, patch: Any, *,
              subresource: str | None = None, content_type: str = "application/merge-patch+json") -> dict[str, Any]:
        old = self._store.get((key, namespace, name))
        if old is None:
            raise ApiError(404, "NotFound", f'{key[2]} "{name}" not found')
        if "json-patch" in content_type:
            new = json_patch(old, patch)
            check_rv = False  # a JSON-patch carries its own 'test' ops
        else:
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
            new = merge_patch(old, patch)
            check_rv = bool((patch.get("metadata") or {}).get("resourceVersion"))
        if not check_rv:
            new.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        return self.replace(key, namespace, name, new, subresource=subresource, check_rv=check_rv)

    def delete_obj(self, key: Key, namespace: str | None, name: str, *, propagation: str | None = None,
               grace_seconds: int | None = None) -> dict[str, Any]:
        okey = (key, namespace, name)
        obj = self._store.get(okey)
        if obj is None:
            raise ApiError(404, "NotFound", f'{key[2]} "{name}" not found')
        meta = obj["metadata"]
        if propagation is None:
            propagation = "Orphan" if key == JOBS else "Background"
        if propagation == "Orphan":
            self._orphan(meta["uid"])
        self._propagation[okey] = propagation
        if meta.get("deletionTimestamp"):
            return copy.deepcopy(obj)
        graceful = key == PODS and (grace_seconds is None or grace_seconds > 0) and not self._pod_may_vanish(obj)
        if meta.get("finalizers") or graceful:
            meta["deletionTimestamp"] = now_iso()
            if key == PODS:
                meta["deletionGracePeriodSeconds"] = (
                    grace_seconds if grace_seconds is not None
                    else obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
                )
            meta["resourceVersion"] = str(self._bump())
            self._emit(key, "MODIFIED", obj)
            if key == PODS and graceful and self.on_pod_delete is not None:
                self.on_pod_delete(copy.deepcopy(obj))
            return copy.deepcopy(obj)
        self._remove(okey)
        return copy.deepcopy(obj)

    def remove_pod(self, namespace: str, name: str) -> None:
        """The kubelet's final removal of a terminated Pod (force delete after its grace period).

        A Pod that still has finalizers (the Job controller's tracking finalizer) stays, marked for
        deletion, until they are removed: then the API server removes it.
        """
        okey = (PODS, namespace, name)
        obj = self._store.get(okey)
        if obj is None:
            return
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"]["deletionTimestamp"] = now_iso()
                obj["metadata"]["resourceVersion"] = str(self._bump())
                self._emit(PODS, "MODIFIED", obj)
            return
        self._remove(okey)

    @staticmethod
    def _pod_may_vanish(pod: dict[str, Any]) -> bool:
        """A Pod with no node or in a terminal phase needs no kubelet to go away."""
        return not pod.get("spec", {}).get("nodeName") or pod.get("status", {}).get("phase") in (
            "Succeeded", "Failed")

    def _remove(self, okey: ObjKey) -> None:
        obj = self._store.pop(okey)
        obj["metadata"]["resourceVersion"] = str(self._bump())
        propagation = self._propagation.pop(okey, "Background")
        self._emit(okey[0], "DELETED", obj)
        if propagation != "Orphan":
            self._collect(obj["metadata"]["uid"])

    def _dependents(self, uid: str) -> list[ObjKey]:
        return [k for k, o in self._store.items()
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]

    def _collect(self, uid: str) -> None:
        """Garbage collection: delete the dependents of a removed owner (background)."""
        for k in self._dependents(uid):
            if k in self._store:
                with contextlib.suppress(ApiError):
                    self.delete_obj(k[0], k[1], k[2], propagation="Background")

    def _orphan(self, uid: str) -> None:
        for k in self._dependents(uid):
            o = self._store[k]
            o["metadata"]["ownerReferences"] = [
                r for r in o["metadata"]["ownerReferences"] if r.get("uid") != uid] or None
            if o["metadata"]["ownerReferences"] is None:
                del o["metadata"]["ownerReferences"]
            o["metadata"]["resourceVersion"] = str(self._bump())
            self._emit(k[0], "MODIFIED", o)

    def objects_of(self, key: Key) -> Iterable[dict[str, Any]]:
        return [copy.deepcopy(o) for (k, _, _), o in self._store.items() if k == key]

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is None or not res.plural:
            return await super()._handle(request)
        key: Key = (res.group or "", res.version or "", res.plural)
        params = dict(request.params or {})
        watching = request.method == "GET" and params.get("watch", "").lower() in ("true", "1")
        status = 200
        try:
            self._maybe_fault(request.method, watching)
            if key not in self.kinds:
                raise ApiError(404, "NotFound", f"the server could not find the requested resource ({key})")
            self._maybe_concurrent_write(request, key)
            if watching:
                status = -1  # recorded when the stream starts, not when it ends
                self.audit.append((request.method, str(request.url.path_qs), 200))
                return await self._watch(request, key, params)
            body, status = self._dispatch(request, key, params)
            return aiohttp.web.json_response(body, status=status)
        except ApiError as e:
            status = e.code
            if e.reason == "Conflict" or (e.code == 422 and "test failed" in e.message):
                self._count("conflict")
            return aiohttp.web.json_response(
                {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "code": e.code,
                 "reason": e.reason, "message": e.message},
                status=e.code, headers=e.headers,
            )
        finally:
            if status != -1:
                self.audit.append((request.method, str(request.url.path_qs), status))

    def _count(self, kind: str) -> int:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return self.injected[kind]

    def _maybe_fault(self, method: str, watching: bool) -> None:
        f = self.faults
        if f.throttle_rate and self.injected.get("throttle", 0) < f.max_each and f.rng.random() < f.throttle_rate:
            self._count("throttle")
            raise ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                           headers={"Retry-After": str(f.retry_after_seconds)})
        if (not watching and f.error_rate and self.injected.get("error", 0) < f.max_each
                and f.rng.random() < f.error_rate):
            self._count("error")
            raise ApiError(500, "InternalError", "Internal error occurred: injected by the harness")


    @staticmethod
    def _preconditioned(request: Request) -> bool:
        """Does a PATCH/PUT carry a resourceVersion precondition (so that a concurrent write fails it)?"""
        try:
            data = request.data if request.data is not None else (json.loads(request.text) if request.text else None)
        except ValueError:
            return False
        if isinstance(data, list):
            return any(isinstance(op, dict) and op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion"
                       for op in data)
        return isinstance(data, dict) and bool((data.get("metadata") or {}).get("resourceVersion"))

    def _maybe_concurrent_write(self, request: Request, key: Key) -> None:
        f = self.faults
        if (request.method not in ("PATCH", "PUT") or request.name is None or not f.conflict_rate
                or self.injected.get("concurrent_write", 0) >= f.max_each or not self._preconditioned(request)
                or f.rng.random() >= f.conflict_rate):
            return
        obj = self._store.get((key, request.namespace, request.name))
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        n = self._count("concurrent_write")
        self.patch_obj(key, request.namespace, request.name,
                   {"metadata": {"annotations": {"box.harness/concurrent-write": str(n)}}})

    def _dispatch(self, request: Request, key: Key, params: dict[str, str]) -> tuple[Any, int]:
        ns, name, sub = request.namespace, request.name, request.subresource
        kind = self.kinds[key]["kind"]
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", f"subresource {sub!r} is not served by the harness")
        method = request.method
        data = request.data if request.data is not None else (json.loads(request.text) if request.text else None)
        if method == "GET" and name is None:
            items = self.select(key, ns, labels=params.get("labelSelector"), fields=params.get("fieldSelector"))
            return {"apiVersion": f"{key[0]}/{key[1]}" if key[0] else key[1], "kind": _kind_list(kind),
                    "metadata": {"resourceVersion": str(self._last_rv)}, "items": items}, 200
        if method == "GET":
            obj = self.read(key, ns, name or "")
            if obj is None:
                raise ApiError(404, "NotFound", f'{key[2]} "{name}" not found')
            return obj, 200
        if method == "POST" and name is None:
            if not isinstance(data, dict):
                raise ApiError(400, "BadRequest", "the body must be a JSON object")
            return self.create(key, ns, data, keep_status=False), 201
        if method == "PATCH" and name is not None:
            ctype = request.headers.get("Content-Type", "application/merge-patch+json")
            return self.patch_obj(key, ns, name, data, subresource=sub, content_type=ctype), 200
        if method == "PUT" and name is not None:
            if not isinstance(data, dict):
                raise ApiError(400, "BadRequest", "the body must be a JSON object")
            return self.replace(key, ns, name, data, subresource=sub), 200
        if method == "DELETE":
            opts = data if isinstance(data, dict) else {}
            propagation = opts.get("propagationPolicy") or params.get("propagationPolicy")
            if opts.get("orphanDependents") is True or params.get("orphanDependents") == "true":
                propagation = "Orphan"
            grace = opts.get("gracePeriodSeconds", params.get("gracePeriodSeconds"))
            grace_s = int(grace) if grace is not None else None
            if name is None:
                victims = self.select(key, ns, labels=params.get("labelSelector"))
                for v in victims:
                    self.delete_obj(key, v["metadata"].get("namespace"), v["metadata"]["name"],
                                propagation=propagation, grace_seconds=grace_s)
                return {"kind": _kind_list(kind), "items": victims, "metadata": {}}, 200
            return self.delete_obj(key, ns, name, propagation=propagation, grace_seconds=grace_s), 200
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    async def _watch(self, request: Request, key: Key, params: dict[str, str]) -> aiohttp.web.StreamResponse:
        ns, name = request.namespace, request.name
        labels, fields = params.get("labelSelector"), params.get("fieldSelector")
        timeout = float(params.get("timeoutSeconds") or 0) or None
        rv_text = params.get("resourceVersion") or ""
        raw = request._raw_request
        assert raw is not None
        resp = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(raw)

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            return ((ns is None or meta.get("namespace") == ns) and (name is None or meta["name"] == name)
                    and label_selector_matches(labels, meta.get("labels") or {})
                    and field_selector_matches(fields, obj))

        async def send(kind: str, obj: dict[str, Any]) -> bool:
            await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            f = self.faults
            if (f.watch_drop_rate and self.injected.get("watch_drop", 0) < f.max_each
                    and f.rng.random() < f.watch_drop_rate):
                self._count("watch_drop")
                if raw.transport is not None:
                    raw.transport.abort()  # a cut connection, not a clean end
                return False
            return True

        if rv_text in ("", "0"):
            since = self._last_rv
            for obj in self.select(key, ns, labels=labels, fields=fields):
                if (name is None or obj["metadata"]["name"] == name) and not await send("ADDED", obj):
                    return resp
        else:
            since = int(rv_text)
            if self._log and since < self._log[0][0] - 1:
                err = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                       "message": f"too old resource version: {since}"}
                await resp.write(json.dumps({"type": "ERROR", "object": err}).encode() + b"\n")
                return resp
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        try:
            while deadline is None or loop.time() < deadline:
                start = bisect.bisect_right(self._log, since, key=lambda e: e[0])
                for rv, k, kind, obj in self._log[start:]:
                    since = rv
                    if k == key and wanted(obj) and not await send(kind, obj):
                        return resp
                wait = 5.0 if deadline is None else max(0.0, min(5.0, deadline - loop.time()))
                await self.changed(wait)
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        return resp
