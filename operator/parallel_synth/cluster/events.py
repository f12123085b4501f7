"""Kubernetes Events for the moments a user cares about, built as plain dicts (no I/O).

The decisions choose the Events (:class:`parallel_synth.decisions.effects.Event`); this module
only builds the core/v1 object ``cluster/reconcile`` posts. Reasons: ``Planned``,
``BatchStarted``, ``BatchFinished``, ``BatchRetried``, ``BatchFailed``, ``Preempted``,
``SpecInvalid``, ``Finished``, ``Indexing``, ``IndexFailed``; the autoscaler's transitions
(``ProjectedOverBudget``/``SpendReachedBudget``, ``SpotPreempted``, ``Unschedulable``); issue #17
(Kueue) adds ``Evicted`` (Kueue took an admitted Job back: preemptions, not retries) and
``BatchPaused`` (a Kueue Job deleted to pause).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parallel_synth.decisions.effects import Event
from synth_contract.api import API_VERSION, LABEL_MANAGED_BY, MANAGED_BY
from synth_contract.times import format_time

COMPONENT = "parallel-synth-operator"
MAX_MESSAGE = 1024


def event_body(
    involved: dict[str, Any], ev: Event, *, now: datetime, instance: str = COMPONENT
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (a body with apiVersion/kind/metadata)."""
    meta = involved.get("metadata") or {}
    name = str(meta.get("name", "unknown"))
    ref = {
        "apiVersion": involved.get("apiVersion", API_VERSION),
        "kind": involved.get("kind", ""),
        "name": name,
        "namespace": meta.get("namespace"),
    }
    if meta.get("uid"):
        ref["uid"] = meta["uid"]
    ts = format_time(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{name[:200]}.",
            "namespace": meta.get("namespace"),
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "involvedObject": ref,
        "type": ev.type,
        "reason": ev.reason,
        "message": ev.message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
    }
