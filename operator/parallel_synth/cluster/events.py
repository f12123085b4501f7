"""Kubernetes Events for the moments a user cares about, built as plain dicts (no I/O).

Reasons used by the operator core: ``Planned``, ``BatchStarted``, ``BatchFinished``,
``BatchRetried``, ``BatchFailed``, ``Preempted``, ``SpecInvalid``, ``Finished``; issue #6 adds
``BudgetExceeded`` through :func:`budget_exceeded`; issue #17 (Kueue) adds ``Evicted`` (Kueue
took an admitted Job back: preemptions, not retries) and ``BatchPaused`` (a Kueue Job deleted to pause).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parallel_synth.decisions.batch import EventSpec
from parallel_synth.decisions.status import rfc3339
from synth_contract.api import API_VERSION, LABEL_MANAGED_BY, MANAGED_BY

COMPONENT = "parallel-synth-operator"
MAX_MESSAGE = 1024


def event_body(
    involved: dict[str, Any], ev: EventSpec, *, now: datetime, instance: str = COMPONENT
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
    ts = rfc3339(now)
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


def spec_invalid(errors: list[str]) -> EventSpec:
    return EventSpec("Warning", "SpecInvalid", "; ".join(errors))


def budget_exceeded(spent: float, limit: float) -> EventSpec:
    """For issue #6: posted once when spend or projected spend reaches ``budget.maxDollars``."""
    return EventSpec("Warning", "BudgetExceeded", f"${spent:,.2f} reaches the budget of ${limit:,.2f}; no new work")
