"""Two operator replicas under kopf peering (issue #12 item 8), as the chart runs them.

Two real ``synthctl operator`` processes with the chart's arguments (``--peering``, the default
``--priority=auto``) and distinct pod names (``POD_ID``, from the downward API) share a KopfPeering
in the API emulator. With equal priorities kopf pauses *every* replica; with the derived ones the
lower replica stands by and the other reconciles.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kmock
import pytest
from builders import SMALL, manifest, wire
from kmockx import ThreadedKMock
from opcluster import DS, NS, RB
from waiting import wait_for

from parallel_synth.commands.operator import peering_priority

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PODS = ("ps-parallel-synth-operator-5d9c7b6f4-x2kq9", "ps-parallel-synth-operator-5d9c7b6f4-m7tzp")
SAME_PRIORITY = "Possibly conflicting operators with the same priority"
DATASET = manifest(wire(SMALL, samples=300, shardSize=100, output={"uri": "s3://bucket/x"}), namespace=NS)
SYNTHCTL = str(Path(sys.executable).parent / "synthctl")


@contextmanager
def replicas(km: ThreadedKMock, tmp: Path, *extra: str) -> Iterator[list[Path]]:
    km.emulator.resources["kopf.dev/v1/kopfpeerings"] = kmock.ResourceInfo(
        kind="KopfPeering", namespaced=True, verbs={"get", "list", "watch", "create", "patch", "delete"})
    km.request("POST", f"/apis/kopf.dev/v1/namespaces/{NS}/kopfpeerings",
               {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "ps", "namespace": NS}})
    kubeconfig = km.kubeconfig(tmp / "kubeconfig")
    logs, procs = [], []
    try:
        for pod in PODS:
            env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_ID": pod,
                   "SYNTH_OPERATOR_CLUSTER_SCANNING": "false", "SYNTH_OPERATOR_INITIAL_DELAY": "0.1"}
            log = tmp / f"{pod}.log"
            logs.append(log)
            procs.append(subprocess.Popen(
                [SYNTHCTL, "operator", "-n", NS, "--peering=ps", "--log-format=plain", "--verbose", *extra],
                env=env, stdout=log.open("w"), stderr=subprocess.STDOUT))
        yield logs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)


def says(log: Path, text: str) -> bool:
    return text in log.read_text()


def test_replicas_with_derived_priorities_elect_one_active(tmp_path: Path) -> None:
    low, high = sorted(range(2), key=lambda i: peering_priority("auto", {"POD_ID": PODS[i]}))
    with ThreadedKMock() as km, replicas(km, tmp_path) as logs:
        wait_for(lambda: all(says(log, "Keep-alive in 'ps'") for log in logs), timeout=60,
                 what="both replicas to announce themselves in the peering")
        km.request("POST", DS, DATASET)
        wait_for(lambda: km.items(RB), timeout=30,
                 what="the active replica to reconcile (no freeze)")
        wait_for(lambda: says(logs[high], "Adding the finalizer"), timeout=30, what="the higher replica's handlers")
        assert not says(logs[low], "Adding the finalizer"), "the lower replica stands by"
        assert not any(says(log, SAME_PRIORITY) for log in logs)


def test_equal_priorities_freeze_every_replica(tmp_path: Path) -> None:
    """What the chart did before: kopf pauses both (the check above would catch a regression)."""
    with ThreadedKMock() as km, replicas(km, tmp_path, "--priority=0") as logs:
        wait_for(lambda: all(says(log, SAME_PRIORITY) for log in logs), timeout=60, what="kopf's freeze")
