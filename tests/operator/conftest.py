"""Fixtures for the operator tests: fast operator settings, KMock in a thread, the operator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Operator settings are read once when parallel_synth.handlers is imported: make ticks fast.
os.environ.setdefault("SYNTH_OPERATOR_DATASET_INTERVAL", "0.25")
os.environ.setdefault("SYNTH_OPERATOR_BATCH_INTERVAL", "0.2")
os.environ.setdefault("SYNTH_OPERATOR_INITIAL_DELAY", "0.05")
os.environ.setdefault("SYNTH_OPERATOR_RETRY_BACKOFF_SECONDS", "0.3")
os.environ.setdefault("SYNTH_OPERATOR_CLUSTER_SCANNING", "false")  # KMock cannot serve /api/v1/namespaces

from kmockx import ThreadedKMock


@pytest.fixture()
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedKMock]:
    with ThreadedKMock() as km:
        monkeypatch.setenv("KUBECONFIG", str(km.kubeconfig(tmp_path / "kubeconfig")))
        yield km


@contextmanager
def running_operator(*extra: str) -> Iterator[Any]:
    """The real operator (``synthctl operator``'s handlers) in kopf's test runner."""
    from kopf.testing import KopfRunner

    args = ["run", "-m", "parallel_synth.handlers", "--standalone", "-n", "ns", *extra]
    with KopfRunner(args, timeout=30) as runner:
        yield runner


@pytest.fixture()
def operator(cluster: ThreadedKMock) -> Iterator[Any]:
    with running_operator() as runner:
        yield runner
