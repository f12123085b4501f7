"""Fleet simulations: the real planner, window/status, autoscaler and cost against simulated fleets.

Small datasets (100-sample shards of 10 s samples: a shard takes ~17 minutes) keep each run to
about a second while leaving dozens of autoscaler ticks per shard.
"""

from __future__ import annotations

import json
from pathlib import Path

import builders
import pytest
from builders import FLEET, wire, write_manifest
from click.testing import CliRunner

from parallel_synth.commands.cli import cli
from parallel_synth.simulator.fleet import simulate
from parallel_synth.simulator.model import SimConfig

SIM = wire(FLEET, shardsPerBatch=100)
"""Batches of 100 shards: fewer batch hand-overs, so fewer operator reconciles to simulate."""


def _condition(report_status: dict, kind: str) -> dict:
    return next(c for c in report_status["conditions"] if c["type"] == kind)


def test_steady_state_reaches_the_target_within_ten_percent() -> None:
    spec = builders.spec(SIM)  # 200k/day at 8640 per worker: 24 workers of the 50 allowed
    r = simulate("steady", spec, SimConfig(seed=1, tick_seconds=600))
    assert r.finished and r.shards_completed == r.shards_total == 4000
    assert r.attained_per_day == pytest.approx(200_000, rel=0.10)
    assert 23 <= r.final_status["workers"]["desired"] <= 27 or r.days[0].desired in range(23, 28)
    assert max(d.desired for d in r.days) <= 27  # sized for the target, not for workers.max
    measured = [d.measured_per_day for d in r.days[:-1]]
    assert all(m == pytest.approx(200_000, rel=0.15) for m in measured)  # status shows a steady rate
    assert r.final_status["phase"] == "Succeeded"
    assert r.duplicate_commits == 0


def test_preemption_storm_loses_no_committed_shard_and_reports_the_waste() -> None:
    spec = builders.spec(SIM, nodePool={"spot": True, "onDemandFallback": False})
    calm = simulate("calm", spec, SimConfig(seed=2, tick_seconds=600))
    storm = simulate("storm", spec, SimConfig(seed=2, tick_seconds=600, preemption_rate=0.2))
    assert storm.finished
    assert storm.shards_completed == storm.shards_total and storm.shards_failed == 0
    assert storm.samples_completed == spec.samples and storm.duplicate_commits == 0
    assert storm.preemptions > 100
    # the operator's status counts them, plus the pods a scale-down stopped (SIGTERM: exit 143,
    # which decide_batch cannot tell from a preemption), now that decide_batch reads the pods
    assert storm.final_status["preemptions"] == storm.preemptions + storm.stopped_pods
    assert storm.lost_gpu_hours > calm.lost_gpu_hours + 1.0  # the report shows the waste
    assert storm.dollars > calm.dollars
    assert storm.on_demand_gpu_hours == 0  # fallback off: stays on spot


def test_storm_with_fallback_moves_new_pods_to_on_demand() -> None:
    spec = builders.spec(SIM)
    r = simulate("fallback", spec, SimConfig(seed=3, tick_seconds=600, preemption_rate=0.5, preemption_window=(0.2, 10.0)))
    assert r.finished
    assert [m for _, m in r.capacity_switches][:2] == ["spot", "on-demand"]
    assert r.on_demand_gpu_hours > 0
    assert r.final_status["capacityMode"] in ("on-demand", "spot")
    assert _condition(r.final_status, "SpotFallback")["reason"] in ("SpotPreempted", "SpotRetry", "Spot")


def test_budget_stops_new_work_and_running_shards_finish() -> None:
    # renders take twice the estimate: the projection crosses the $500 budget once measured
    spec = builders.spec(SIM, budget={"maxDollars": 500})
    r = simulate("budget", spec, SimConfig(seed=4, tick_seconds=600, gpu_seconds_per_sample=20.0))
    assert r.stopped_by_budget and not r.finished
    assert r.budget_stop_day is not None and r.budget_stop_day < 1.0
    cond = _condition(r.final_status, "BudgetExceeded")
    assert cond["status"] == "True" and cond["reason"] == "ProjectedOverBudget"
    assert r.final_status["workers"]["desired"] == 0 and r.final_status["workers"]["active"] == 0
    assert r.samples_completed < spec.samples
    assert r.lost_gpu_hours < 0.5  # running shards were left to finish, not killed
    assert r.dollars < 500


def test_missing_gpu_capacity_is_reported_not_counted() -> None:
    spec = builders.spec(SIM, nodePool={"spot": True, "onDemandFallback": False})
    r = simulate("short", spec, SimConfig(seed=5, tick_seconds=600, spot_gpus=10, days=0.5))
    assert r.peak_workers == 10
    assert _condition(r.final_status, "PodsScheduled")["status"] == "False"
    assert r.final_status["workers"]["active"] == 10
    assert r.final_status["workers"]["unschedulable"] > 0


def test_deadline_raises_the_fleet_above_the_target() -> None:
    spec = builders.spec(SIM, throughput={"targetPerDay": 50_000, "deadline": "2026-01-02T12:00:00Z"})
    r = simulate("deadline", spec, SimConfig(seed=6, tick_seconds=600))
    assert r.finished and r.elapsed_days <= 1.6
    assert max(d.desired for d in r.days) > 6  # 50k/day alone would need 6


def test_cli_json_and_plot(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "ds.yaml", builders.spec(SIM, samples=40_000).wire(), name="cli")
    png = tmp_path / "sim.png"
    res = CliRunner().invoke(cli, ["simulate", str(manifest), "--json", "--plot", str(png),
                                   "--preemption-rate", "0.05", "--gpu-seconds-per-sample", "12"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["finished"] and out["samples_completed"] == 40_000
    assert out["status"]["samples"]["completed"] == 40_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = CliRunner().invoke(cli, ["simulate", str(manifest), "--days", "0.2"])
    assert res.exit_code == 0 and "samples/day attained" in res.output


def test_batch_statuses_and_the_dataset_phase_come_from_the_operators_decisions() -> None:
    # preemptions and render failures: decide_batch counts them from the simulated pods and Jobs,
    # retries a Job whose indexes failed as a new attempt; decide_dataset folds the batches and
    # finishes the dataset only once the index Job has written the index
    spec = builders.spec(SIM, samples=40_000)
    r = simulate("ops", spec, SimConfig(seed=8, tick_seconds=600, preemption_rate=0.2, failure_rate=0.3))
    assert r.finished and r.shards_completed == 400 and r.shards_failed == 0
    assert r.final_status["phase"] == "Succeeded" and r.final_status["index"]["phase"] == "Succeeded"
    assert _condition(r.final_status, "Indexed")["status"] == "True"
    assert r.event_reasons["Indexing"] == 1 and r.event_reasons["Finished"] == 1
    batches = r.batches.values()
    assert len(batches) == 4 and {b["phase"] for b in batches} == {"Succeeded"}
    assert {b["completedShards"] for b in batches} == {"0-99"}
    assert sum(b["preemptions"] for b in batches) == r.final_status["preemptions"] == r.preemptions + r.stopped_pods
    assert r.preemptions > 0 and r.event_reasons["Preempted"] > 0
    assert sum(b["retries"] for b in batches) == r.final_status["retries"] == r.retries > 0
    assert max(b["attempt"] for b in batches) >= 2  # a Job over maxFailedIndexes: a new attempt
    assert r.event_reasons["BatchRetried"] == sum(b["attempt"] - 1 for b in batches)


def test_shards_failed_for_good_end_the_run_degraded() -> None:
    # render errors on most attempts: each Job goes over maxFailedIndexes, decide_batch retries it
    # up to retry.attempts and then fails the batch; the run ends as soon as every shard is
    # committed or failed for good (known from the batch status, not from the simulated pods)
    r = simulate("bad", builders.spec(SIM, samples=20_000), SimConfig(seed=9, tick_seconds=600, failure_rate=0.7))
    assert r.finished and r.final_status["phase"] == "Degraded" and r.elapsed_days < 1
    assert r.shards_failed > 0 and r.shards_completed + r.shards_failed == r.shards_total
    assert r.final_status["shards"]["failed"] == r.shards_failed
    assert [(b["phase"], b["attempt"]) for b in r.batches.values()] == [("Failed", 3)] * 2
    assert r.event_reasons["BatchFailed"] == 2 and r.event_reasons["BatchRetried"] == 4


def test_a_short_storm_reclaims_the_pods_already_running_when_it_starts() -> None:
    """Preemption is Poisson while the storm lasts: a pod started before the window is exposed
    from the window's start (memoryless). A draw from the pod's own start almost never landed in
    a one-minute window, so a storm at full fleet preempted only pods started inside it
    (benchmarks/bench_fleet.py's reclaim storm, issue #26)."""
    spec = builders.spec(SIM, nodePool={"spot": True, "onDemandFallback": False})
    start = 0.5  # days: the fleet has been full for hours
    cfg = SimConfig(seed=4, tick_seconds=600, preemption_rate=360.0, preemption_window=(start, start + 60 / 86400))
    r = simulate("short-storm", spec, cfg)
    running = r.days[0].workers  # ~24 pods on the fleet when the storm hits
    assert r.finished and r.shards_failed == 0 and r.duplicate_commits == 0
    assert r.preemptions >= 0.8 * running


def test_warm_nodes_start_the_first_pods_without_provisioning() -> None:
    spec = builders.spec(SIM)
    cold = simulate("cold", spec, SimConfig(seed=5, tick_seconds=600, node_provision_seconds=3600))
    warm = simulate("warm", spec, SimConfig(seed=5, tick_seconds=600, node_provision_seconds=3600, warm_nodes=True))
    assert warm.finished and cold.finished
    assert warm.elapsed_days < cold.elapsed_days - 0.5 / 24  # no hour waiting for the first nodes
