"""The real operator against KMock: fast settings, the fixtures, API paths and reads of its objects.

Shared by tests/operator (its conftest.py) and tests/scaling (its conftest.py imports the
fixtures from here): no test imports ``conftest`` itself, as two folders each have one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kmockx import ThreadedKMock

FAST_OPERATOR_ENV = {
    "SYNTH_OPERATOR_DATASET_INTERVAL": "0.25",
    "SYNTH_OPERATOR_BATCH_INTERVAL": "0.2",
    "SYNTH_OPERATOR_INITIAL_DELAY": "0.05",
    "SYNTH_OPERATOR_RETRY_BACKOFF_SECONDS": "0.3",
    "SYNTH_OPERATOR_CLUSTER_SCANNING": "false",  # KMock cannot serve /api/v1/namespaces
}
"""Operator settings for tests: fast ticks (read once when parallel_synth.cluster.handlers is imported)."""

for _k, _v in FAST_OPERATOR_ENV.items():
    os.environ.setdefault(_k, _v)

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


@contextmanager
def running_operator(*extra: str) -> Iterator[Any]:
    """The real operator (``synthctl operator``'s handlers) in kopf's test runner."""
    from kopf.testing import KopfRunner

    args = ["run", "-m", "parallel_synth.cluster.handlers", "--standalone", "-n", NS, *extra]
    with KopfRunner(args, timeout=30) as runner:
        yield runner


@pytest.fixture()
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedKMock]:
    """KMock in its own thread, the kubeconfig of the test pointing at it."""
    with ThreadedKMock() as km:
        monkeypatch.setenv("KUBECONFIG", str(km.kubeconfig(tmp_path / "kubeconfig")))
        yield km


@pytest.fixture()
def operator(cluster: ThreadedKMock) -> Iterator[Any]:
    """The real operator running against ``cluster``."""
    with running_operator() as runner:
        yield runner
