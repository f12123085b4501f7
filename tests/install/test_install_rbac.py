"""Least privilege, checked against the calls the operator's code makes.

`parallel_synth.cluster.kube.API_CALLS` lists every (apiGroup, resource, verb) the operator uses,
kopf's own calls included. For each way to install (kustomize cluster-wide and namespaced,
the chart with and without watchNamespaces) every call must be allowed to the operator's
ServiceAccount where the operator's own arguments say it works, and nothing else is granted.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

Call = tuple[str, str, str]

# Used when parallel_synth/cluster/kube.py does not exist (yet): the calls docs/CONTRACTS.md names.
DOCUMENTED_CALLS: list[Call] = [
    *[("parallelsynth.io", "synthdatasets", v) for v in ("get", "list", "watch", "patch")],
    ("parallelsynth.io", "synthdatasets/status", "patch"),
    *[("parallelsynth.io", "renderbatches", v) for v in ("get", "list", "watch", "create", "patch", "delete")],
    ("parallelsynth.io", "renderbatches/status", "patch"),
    *[("batch", "jobs", v) for v in ("get", "list", "create", "patch", "delete")],
    *[("", "pods", v) for v in ("list", "watch")],
    ("", "nodes", "get"),
    ("", "events", "create"),
    *[("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")],
    *[("", "namespaces", v) for v in ("list", "watch")],
    *[("kopf.dev", r, v) for r in ("clusterkopfpeerings", "kopfpeerings") for v in ("get", "list", "watch", "patch")],
]
# Granted on purpose although API_CALLS does not list them (yet), with the reason.
EXTRA_GRANTS: dict[Call, str] = {}
CLUSTER_SCOPED = {"nodes", "namespaces", "customresourcedefinitions", "clusterkopfpeerings"}
FORBIDDEN = {"secrets", "*"}


def api_calls() -> list[Call]:
    if importlib.util.find_spec("parallel_synth.cluster.kube") is None:
        return DOCUMENTED_CALLS
    from parallel_synth.cluster import kube

    return [tuple(c) for c in kube.API_CALLS]  # type: ignore[misc]


@dataclass
class Grants:
    """What one install grants the operator's ServiceAccount."""

    cluster: list[dict[str, Any]] = field(default_factory=list)
    namespaced: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    served: list[str] | None = None  # None: all namespaces (--all-namespaces)
    objs: list[dict[str, Any]] = field(default_factory=list)


def _allows(rules: Iterable[dict[str, Any]], call: Call) -> bool:
    group, resource, verb = call
    return any(
        group in r.get("apiGroups", []) and resource in r.get("resources", []) and verb in r.get("verbs", [])
        for r in rules
    )


def grants_of(objs: list[dict[str, Any]]) -> Grants:
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    sa = {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": deployment["metadata"]["namespace"]}
    args = pod["containers"][0]["args"]
    served = [a.split("=", 1)[1] for a in args if a.startswith("--namespace=")]
    g = Grants(served=None if "--all-namespaces" in args else served, objs=objs)
    assert ("--all-namespaces" in args) != bool(served), f"operator args name no namespaces: {args}"
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o.get("rules", [])
             for o in objs if o["kind"] in ("Role", "ClusterRole")}
    for b in objs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding") or sa not in b.get("subjects", []):
            continue
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace")
        rules = roles[(ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"])]
        if b["kind"] == "ClusterRoleBinding":
            g.cluster.extend(rules)
        else:
            g.namespaced.setdefault(ns, []).extend(rules)
    return g


def _applies(call: Call, g: Grants) -> bool:
    # kopf peers through ClusterKopfPeering cluster-wide and KopfPeering per namespace otherwise.
    if call[1] == "kopfpeerings":
        return g.served is not None
    if call[1] == "clusterkopfpeerings":
        return g.served is None
    return True


def missing_grants(g: Grants, calls: Iterable[Call]) -> list[str]:
    problems = []
    for call in calls:
        if not _applies(call, g):
            continue
        if call[1].split("/")[0] in CLUSTER_SCOPED or g.served is None:
            if not _allows(g.cluster, call):
                problems.append(f"{call} cluster-wide")
            continue
        for ns in g.served:
            if not _allows(g.cluster, call) and not _allows(g.namespaced.get(ns, []), call):
                problems.append(f"{call} in namespace {ns}")
    return problems


def granted(g: Grants) -> set[Call]:
    out = set()
    for rules in [g.cluster, *g.namespaced.values()]:
        for r in rules:
            out |= {(grp, res, v) for grp in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}
    return out


INSTALLS: dict[str, Callable[[Any, Any], list[dict[str, Any]]]] = {
    "kustomize": lambda k, c: k(""),
    "kustomize-namespaced": lambda k, c: k("overlays/namespaced"),
    "chart": lambda k, c: c(),
    "chart-namespaced": lambda k, c: c("--set", "operator.watchNamespaces={synth,team-b}"),
    "chart-custom-serviceaccount": lambda k, c: c("--set", "serviceAccount.name=ops-bot"),
}


@pytest.fixture(params=sorted(INSTALLS))
def install(request, render_kustomize, render_chart) -> Grants:
    return grants_of(INSTALLS[request.param](render_kustomize, render_chart))


def test_every_api_call_of_the_operator_is_allowed(install: Grants) -> None:
    assert missing_grants(install, api_calls()) == []


def test_nothing_is_granted_beyond_the_api_calls(install: Grants) -> None:
    used = set(api_calls()) | set(EXTRA_GRANTS)
    extra = sorted(granted(install) - used)
    assert extra == [], f"granted but never called (remove the rule or add the call to kube.API_CALLS): {extra}"


def test_no_secrets_wildcards_or_escalation(install: Grants) -> None:
    for group, resource, verb in granted(install):
        assert resource.split("/")[0] not in FORBIDDEN and "*" not in (group, verb)
        assert verb not in ("escalate", "bind", "impersonate")


def test_namespaced_mode_uses_roles_only_in_served_namespaces(install: Grants) -> None:
    if install.served is None:
        assert install.namespaced == {}
        return
    assert sorted(install.namespaced) == sorted(install.served)
    cluster_resources = {res.split("/")[0] for _, res, _ in
                         {(g, r, v) for rule in install.cluster for g in rule["apiGroups"]
                          for r in rule["resources"] for v in rule["verbs"]}}
    assert cluster_resources <= CLUSTER_SCOPED


def test_renderer_serviceaccount_has_no_rights_and_no_token(install: Grants) -> None:
    renderer = [o for o in install.objs if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "parallel-synth-renderer"]
    assert renderer, "the renderer's ServiceAccount is missing"
    assert all(o["automountServiceAccountToken"] is False for o in renderer)
    for ns in install.served or []:
        assert ns in {o["metadata"]["namespace"] for o in renderer}, f"no renderer ServiceAccount in {ns}"
    for b in install.objs:
        if b["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            assert all(s["name"] != "parallel-synth-renderer" for s in b.get("subjects", []))


def test_the_check_notices_a_missing_rule() -> None:
    objs = [
        {"kind": "Deployment", "metadata": {"name": "op", "namespace": "ps"},
         "spec": {"template": {"spec": {"serviceAccountName": "op", "containers": [{"args": ["--all-namespaces"]}]}}}},
        {"kind": "ClusterRole", "metadata": {"name": "r"},
         "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}]},
        {"kind": "ClusterRoleBinding", "metadata": {"name": "r"},
         "roleRef": {"kind": "ClusterRole", "name": "r"},
         "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "ps"}]},
    ]
    g = grants_of(objs)
    assert missing_grants(g, [("batch", "jobs", "get")]) == []
    assert missing_grants(g, [("batch", "jobs", "delete")]) == ["('batch', 'jobs', 'delete') cluster-wide"]
