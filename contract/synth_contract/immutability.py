"""What may change in a SynthDataset that has started: the transition rule, in CEL and in Python.

A sample's category and seed depend on (seed, version, index, schedule segments that start at or
before its shard) and its pixels on ``render``; changing any of those on a running dataset would
silently mix two datasets under one version. So once a dataset has started (the operator has
handed out shards: ``status.nextShard > 0``, or committed some), ``seed``, ``shardSize``,
``render``, ``categories`` and the existing ``schedule`` segments are frozen unless ``version``
changes too; new schedule segments may be appended, after the existing ones and no earlier than
the first shard not yet handed out. A segment is compared whole, its ``factors`` weights included
(they decide which factor values its samples draw), so those are append-only as well.

The API server enforces ``TRANSITION_RULES`` (CEL ``x-kubernetes-validations`` on the root of
the CRD schema, with ``oldSelf``); ``transition_problems`` is the same rule for
``synthctl validate-manifest --old OLD.yaml NEW.yaml``. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

FROZEN = ("seed", "shardSize", "render", "categories", "derivedFrom")
"""Spec fields that decide sample content and cannot change on a started dataset (same version)."""

_STARTED = ("(has(oldSelf.status) && ((has(oldSelf.status.nextShard) && oldSelf.status.nextShard > 0) || "
            "(has(oldSelf.status.shards) && has(oldSelf.status.shards.completed) && "
            "oldSelf.status.shards.completed > 0)))")
_SAME_VERSION = "self.spec.version == oldSelf.spec.version"
_GUARD = f"!{_STARTED} || !({_SAME_VERSION}) || "
_NEXT = "(has(oldSelf.status.nextShard) ? oldSelf.status.nextShard : 0)"

TRANSITION_RULES: list[dict[str, str]] = [
    {
        "rule": _GUARD + " && ".join(
            f"((has(self.spec.{f}) == has(oldSelf.spec.{f})) && (!has(self.spec.{f}) || self.spec.{f} == oldSelf.spec.{f}))"
            for f in FROZEN),
        "message": "spec.seed, spec.shardSize, spec.render, spec.categories and spec.derivedFrom cannot change "
                   "once the dataset has started, unless spec.version changes too",
        "fieldPath": ".spec",
    },
    {
        "rule": _GUARD + "!has(oldSelf.spec.schedule) || (has(self.spec.schedule) && "
                "oldSelf.spec.schedule.all(s, s in self.spec.schedule))",
        "message": "spec.schedule is append-only once the dataset has started: existing segments cannot change "
                   "or go away, unless spec.version changes too",
        "fieldPath": ".spec.schedule",
    },
    {
        "rule": _GUARD + "!has(self.spec.schedule) || self.spec.schedule.all(s, "
                "(has(oldSelf.spec.schedule) && s in oldSelf.spec.schedule) || "
                f"(s.fromShard >= {_NEXT} && (!has(oldSelf.spec.schedule) || "
                "oldSelf.spec.schedule.all(o, o.fromShard < s.fromShard))))",
        "message": "a new spec.schedule segment must come after the existing ones and start at or after "
                   "status.nextShard (shards already handed out keep their categories)",
        "fieldPath": ".spec.schedule",
    },
]


def started(old: dict[str, Any]) -> bool:
    """Whether the old object's status says the dataset has started (the CEL rule's guard)."""
    status = old.get("status")
    if not isinstance(status, dict):
        return False
    shards = status.get("shards") if isinstance(status.get("shards"), dict) else {}
    return int(status.get("nextShard") or 0) > 0 or int((shards or {}).get("completed") or 0) > 0


def transition_problems(old: dict[str, Any], new: dict[str, Any], *, assume_started: bool = False) -> list[str]:
    """Why ``new`` may not replace ``old`` (empty: allowed); both are whole objects with defaulted specs.

    ``assume_started``: treat ``old`` as started even without a status (a manifest from Git).
    """
    o, n = old.get("spec") or {}, new.get("spec") or {}
    if not (assume_started or started(old)) or o.get("version") != n.get("version"):
        return []
    problems = [f"spec.{f} cannot change once the dataset has started, unless spec.version changes too"
                for f in FROZEN if o.get(f) != n.get(f)]
    old_segments, new_segments = list(o.get("schedule") or []), list(n.get("schedule") or [])
    for i, seg in enumerate(old_segments):
        if seg not in new_segments:
            problems.append(f"spec.schedule[{i}] (fromShard {seg.get('fromShard')}) cannot change or go away once "
                            "the dataset has started: the schedule is append-only")
    status = old.get("status") if isinstance(old.get("status"), dict) else {}
    next_shard = int((status or {}).get("nextShard") or 0)
    last = max((int(s.get("fromShard", 0)) for s in old_segments), default=0)
    for i, seg in enumerate(new_segments):
        if seg in old_segments:
            continue
        start = int(seg.get("fromShard", 0))
        if start <= last or start < next_shard:
            problems.append(f"spec.schedule[{i}].fromShard {start} must be after the existing segments (> {last}) "
                            f"and >= status.nextShard {next_shard} (shards already handed out keep their categories)")
    return problems
