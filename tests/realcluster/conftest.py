"""Fixtures of the tests on a real control plane (``scripts/local-cluster.sh``).

One cluster serves the whole session: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok (2 on-demand and 2 spot fake GPU nodes) and Kueue's manager, all built from
Go modules and started on 127.0.0.1 (about 30 s; the first build of the binaries takes about
15 minutes and is cached under ``$PARALLEL_SYNTH_TOOLS``). ``make test`` builds them before pytest
starts, so a build failure is reported as such. A test that cannot get its cluster FAILS: these
tests never skip.

``PARALLEL_SYNTH_CLUSTER_DIR=DIR`` reuses a cluster already started with
``local-cluster.sh up DIR --kueue`` (handy while writing tests; it is left running).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from localcluster import ROOT, LocalCluster, down, up


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.realcluster)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    reuse = os.environ.get("PARALLEL_SYNTH_CLUSTER_DIR")
    if reuse:
        yield LocalCluster.from_dir(Path(reuse))
        return
    d = tmp_path_factory.mktemp("cluster")
    c = up(d, "--kueue", "--gpu-nodes", "2", "--spot-nodes", "2")
    try:
        yield c
    finally:
        proc = down(d)
        assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="session")
def crds(cluster: LocalCluster) -> LocalCluster:
    """The project's CRDs, applied server-side, Established and served (discovery, OpenAPI v3)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.wait("crd/synthdatasets.parallelsynth.io", "condition=Established")
    cluster.wait("crd/renderbatches.parallelsynth.io", "condition=Established")
    cluster.served("parallelsynth.io/v1alpha1", {"synthdatasets": "SynthDataset", "renderbatches": "RenderBatch"})
    return cluster


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace per test, deleted after it (its objects go with it)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    cluster.wait("serviceaccount/default", "create", namespace=name, timeout=60)
    try:
        yield name
    finally:
        cluster.run("delete", "namespace", name, "--wait=false", check=False)
