"""Merge a dataset's ``spec.podTemplate`` into the pods the operator builds (issue #17).

Why a module of its own: platform teams need site-specific labels, annotations, priority and
runtime classes, pull secrets, env and placement on render pods, while the operator must keep
the fields it relies on. Pure functions over plain dicts; ``jobs.py`` calls them last.

Rules (the operator's fields stay authoritative):

* labels, annotations: added; on a clash the operator's value wins (the model already refuses
  the keys the operator, the Job controller and Kueue own, so a clash cannot come from a valid
  spec);
* ``priorityClassName``, ``runtimeClassName``: set (the operator sets neither);
* ``imagePullSecrets``: the admin's (chart) secrets first, then the dataset's, no repeats;
* ``env``: appended to each container after the operator's variables, never replacing one
  (``valueFrom`` only; reserved names are refused by the model);
* node affinity: the dataset's required terms are ANDed with the operator's (each of its terms
  gets the operator's expressions), its preferences are added to the operator's;
* ``topologySpreadConstraints``: set;
* never touched: security contexts, service account and token, restart and pod failure policy,
  resources, volumes, tolerations, command and args.

The index Job (CPU-only) gets the metadata, classes of priority, pull secrets and env, but not
the runtime class or the placement (they describe GPU nodes).
"""

from __future__ import annotations

import copy
from typing import Any

from synth_contract.api import PodTemplateSpec


def pod_metadata(labels: dict[str, str], template: PodTemplateSpec | None) -> dict[str, Any]:
    """Pod template metadata: the operator's labels over the dataset's; the dataset's annotations."""
    if template is None:
        return {"labels": dict(labels)}
    meta: dict[str, Any] = {"labels": {**template.labels, **labels}}
    if template.annotations:
        meta["annotations"] = dict(template.annotations)
    return meta


def merge_pod_spec(pod_spec: dict[str, Any], template: PodTemplateSpec | None, *, placement: bool = True
                   ) -> dict[str, Any]:
    """The pod spec with the dataset's overrides merged in (a new dict; the input is not changed)."""
    if template is None:
        return pod_spec
    out = copy.deepcopy(pod_spec)
    if template.priority_class_name:
        out["priorityClassName"] = template.priority_class_name
    if template.runtime_class_name and placement:
        out["runtimeClassName"] = template.runtime_class_name
    if template.image_pull_secrets:
        have = list(out.get("imagePullSecrets") or [])
        names = {s.get("name") for s in have}
        have += [{"name": s.name} for s in template.image_pull_secrets if s.name not in names]
        out["imagePullSecrets"] = have
    if template.env:
        extra = [e.wire() for e in template.env]
        for c in out.get("containers") or []:
            own = {e.get("name") for e in c.get("env") or []}
            c["env"] = list(c.get("env") or []) + [e for e in extra if e["name"] not in own]
    if placement and template.affinity is not None and template.affinity.node_affinity is not None:
        out["affinity"] = merge_node_affinity(out.get("affinity") or {}, template.affinity.node_affinity.wire())
    if placement and template.topology_spread_constraints:
        out["topologySpreadConstraints"] = [t.wire() for t in template.topology_spread_constraints]
    return out


_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def merge_node_affinity(affinity: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """The operator's affinity with the dataset's node affinity merged in.

    Required: node selector terms are ORed and a term's expressions ANDed, so "operator AND
    dataset" is every dataset term extended by the operator's expressions (cross product).
    Preferred: both lists.
    """
    out = copy.deepcopy(affinity)
    node = dict(out.get("nodeAffinity") or {})
    mine = (node.get(_REQUIRED) or {}).get("nodeSelectorTerms") or []
    theirs = (user.get(_REQUIRED) or {}).get("nodeSelectorTerms") or []
    if theirs:
        terms = []
        for t in theirs:
            for m in mine or [{}]:
                term: dict[str, Any] = {}
                for key in ("matchExpressions", "matchFields"):
                    items = list(t.get(key) or []) + list(m.get(key) or [])
                    if items:
                        term[key] = items
                terms.append(term)
        node[_REQUIRED] = {"nodeSelectorTerms": terms}
    prefs = list(node.get(_PREFERRED) or []) + list(user.get(_PREFERRED) or [])
    if prefs:
        node[_PREFERRED] = prefs
    if node:
        out["nodeAffinity"] = node
    return out
