"""The autoscaler inside the real operator, against KMock: a timer tick patches Job parallelism."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from builders import manifest, wire
from kmockx import ThreadedKMock
from opcluster import DS, EVENTS, FAST_OPERATOR_ENV, JOBS, NS, status
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_for

pytestmark = pytest.mark.integration

DATASET = manifest(wire(
    samples=3000, shardSize=100, shardsPerBatch=10, workers={"min": 1, "max": 8},
    throughput={"targetPerDay": 3000}, estimates={"gpuSecondsPerSample": 86.4},
    categories=[{"name": "geometry"}],  # no simulation bake on top of the 86.4 s
    output={"uri": "s3://bucket/data"},
), namespace=NS)
"""30 shards in batches of 10; one worker renders 1000 samples/day (86.4 s per sample)."""


def total_parallelism(km: ThreadedKMock) -> int:
    return sum(int(j["spec"].get("parallelism") or 0) for j in km.items(JOBS))


def condition(km: ThreadedKMock, kind: str) -> dict[str, Any]:
    return next((c for c in status(km).get("conditions") or [] if c["type"] == kind), {})


def test_timer_sizes_jobs_for_the_target_and_the_budget_stops_and_resumes_them(
    cluster: ThreadedKMock, operator: Any
) -> None:
    km = cluster
    km.request("POST", DS, DATASET)
    # 3000/day at the prior 1000/day per worker: 3 pods over the Jobs, not workers.max (8)
    wait_for(lambda: km.items(JOBS) and total_parallelism(km) == 3, what="Jobs sized for the target")
    st = wait_for(lambda: status(km) if status(km).get("workers", {}).get("desired") == 3 else None,
                  what="status.workers.desired")
    assert st["autoscaler"]["reason"] == "Target" and st["capacityMode"] == "spot"
    assert st["cost"]["projectedDollars"] > 0 and st["eta"]
    assert condition(km, "BudgetExceeded")["status"] == "False"

    km.patch(f"{DS}/ds", {"spec": {"budget": {"maxDollars": 0.01}}})
    wait_for(lambda: total_parallelism(km) == 0, what="new work stopped")
    assert condition(km, "BudgetExceeded")["reason"] == "ProjectedOverBudget"
    wait_for(lambda: any(e["reason"] == "ProjectedOverBudget" for e in km.items(EVENTS)), what="Event")

    km.patch(f"{DS}/ds", {"spec": {"budget": {"maxDollars": 1000}}})
    wait_for(lambda: total_parallelism(km) == 3, what="work resumed")
    assert condition(km, "BudgetExceeded")["status"] == "False"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_operator_serves_parseable_metrics_for_each_dataset(cluster: ThreadedKMock) -> None:
    km = cluster
    km.request("POST", DS, DATASET)
    port = _free_port()
    env = {**os.environ, **FAST_OPERATOR_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "parallel_synth.commands.cli", "operator", "--standalone", "-n", NS,
         "--metrics-port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def scrape() -> dict[str, float] | None:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                return None
            values = {s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                      if s.labels.get("dataset", "ds") == "ds"}
            return values if values.get("parallelsynth_workers_desired") == 3 else None

        values = wait_for(scrape, timeout=30, what="metrics of the dataset")
        assert values["parallelsynth_target_samples_per_day"] == 3000
        assert values["parallelsynth_reconcile_duration_seconds_count"] >= 1
        assert "parallelsynth_cost_dollars_total" in values
        assert not any(name.startswith("python_gc") for name in values)  # our registry, not the global one

        def gone() -> bool:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            return not any(s.labels.get("dataset") == "ds" and s.name == "parallelsynth_workers_desired"
                           for fam in text_string_to_metric_families(text) for s in fam.samples)

        km.request("DELETE", f"{DS}/ds")  # a deleted dataset leaves /metrics
        wait_for(lambda: gone() or None, timeout=30, what="metrics of the deleted dataset gone")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
