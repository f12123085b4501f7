"""The operator at fleet scale on a real API server: benchmarks/bench_fleet.py on a small fleet.

30 kwok GPU nodes (6 on-demand + 24 spot), 1,000 samples in shards of 10, every fault of the
benchmark compressed into about a minute: a reclaim storm (30% of the spot nodes deleted, replacements
joining later), a zone NotReady, the operator restarted, kube-apiserver restarted with
``--max-requests-inflight`` lowered. What a user would notice is asserted: the fleet fills to the
wanted pods, every shard is committed once and the dataset succeeds, each pod lost with a deleted
node is counted as one preemption, and no preemption burns a retry. Timings and ratios are
benchmark figures (docs/fleet.md), never asserted here.

This test needs its own nodes and kwok stages, so it starts its own control plane with
``local-cluster.sh up`` (not the session ``cluster`` fixture of conftest.py, which it does not
request). Every port of that cluster is picked free by the script: ``APISERVER_PORT`` and
``ETCD_PORT`` are removed from the environment, so it can never collide with a session cluster
started on fixed ports. The benchmark's own clean-up stops the cluster, moto and the operator.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from localcluster import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_fleet

pytestmark = [pytest.mark.slow]

SMALL = dataclasses.replace(
    bench_fleet.QUICK, gpu=6, spot=24, samples=1_000, shard=10, sigma=0.3, storm_after=5, storm_seconds=10,
    provision=10, zone_after=20, zone_seconds=15, restart_after=40, throttle_after=45, throttle_seconds=10,
    timeout=400)


@pytest.mark.timeout(600)
def test_a_small_fleet_fills_survives_every_fault_and_finishes(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APISERVER_PORT", raising=False)
    monkeypatch.delenv("ETCD_PORT", raising=False)
    fig = bench_fleet.measure(SMALL, tmp_path, tmp_path / "cluster", seed=26)

    assert fig["timeToFullFleet"] is not None, fig["notes"]  # 95% of workers.max running at once
    assert fig["phase"] == "Succeeded", (fig["phase"], fig["notes"], fig["standin"]["errors"])
    shards = fig["shards"]
    assert (fig["shardsCommitted"], fig["shardsInBucket"], fig["statusShardsCompleted"]) == (shards,) * 3
    assert fig["nodesDeleted"] == round(bench_fleet.STORM_FRACTION * SMALL.spot)
    assert fig["podsLostWithDeletedNodes"] > 0
    assert fig["preemptionsCounted"] == fig["podsLostWithDeletedNodes"]
    assert fig["retries"] == 0

    sim = bench_fleet.simulate_same(SMALL, tmp_path, fig, 26)  # `synthctl simulate` on the same run
    assert sim["finished"]
    assert sim["retries"] == 0
