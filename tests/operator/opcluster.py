"""API paths and reads of the operator's objects in KMock, for the tests that run the real operator."""

from __future__ import annotations

from typing import Any

from kmockx import ThreadedKMock

NS = "ns"
DS = f"/apis/parallelsynth.io/v1alpha1/namespaces/{NS}/synthdatasets"
RB = f"/apis/parallelsynth.io/v1alpha1/namespaces/{NS}/renderbatches"
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"
PODS = f"/api/v1/namespaces/{NS}/pods"
EVENTS = f"/api/v1/namespaces/{NS}/events"


def status(km: ThreadedKMock) -> dict[str, Any]:
    """The status of SynthDataset ``ds`` ({} while it has none)."""
    return (km.request("GET", f"{DS}/ds") or {}).get("status") or {}


def batch(km: ThreadedKMock, name: str = "ds-b0") -> dict[str, Any]:
    """The status of RenderBatch ``name`` ({} while it has none)."""
    return (km.request("GET", f"{RB}/{name}") or {}).get("status") or {}


def job(km: ThreadedKMock, name: str) -> dict[str, Any]:
    return km.request("GET", f"{JOBS}/{name}") or {}


def names(km: ThreadedKMock, path: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in km.items(path))


def reasons(km: ThreadedKMock) -> list[str]:
    """Reasons of the Events about SynthDatasets and RenderBatches, oldest first."""
    return [e["reason"] for e in km.items(EVENTS) if e["involvedObject"]["kind"] in ("SynthDataset", "RenderBatch")]
