"""The capacity plan's arithmetic against hand-computed cases, and the `synthctl plan` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import builders
import pytest
from builders import SMALL, wire, write_manifest
from click.testing import CliRunner

from parallel_synth.commands.cli import cli
from parallel_synth.local.capacity import PlanInputs, capacity_plan, human_bytes, rgb_fraction

PLANNED = wire(SMALL, samples=500_000_000, shardSize=1000, output={"uri": "s3://bucket/x"}, image="img",
               categories=[{"name": "geometry"}])  # no simulation bake


def test_reference_plan_500m_samples_at_5mb_is_2_5_pb() -> None:
    spec = builders.spec(PLANNED, estimates={"gpuSecondsPerSample": 60, "bytesPerSample": 5_000_000},
                   pricing={"spotPerGpuHour": 0.30, "onDemandPerGpuHour": 1.00},
                   throughput={"targetPerDay": 1_440_000}, workers={"min": 0, "max": 2000},
                   nodePool={"spot": True, "onDemandFallback": True})
    p = capacity_plan(spec, inputs=PlanInputs(spot_rework=0.0))
    assert p.storage_bytes == 2.5e15
    assert human_bytes(p.storage_bytes) == "2.50 PB"
    assert p.gpu_hours == pytest.approx(500e6 * 60 / 3600)  # 8,333,333 GPU-hours
    assert p.cost.on_demand == pytest.approx(8_333_333.33, rel=1e-9)
    assert p.cost.spot == pytest.approx(2_500_000.0)
    assert p.cost.mix == pytest.approx(0.8 * 2_500_000 + 0.2 * 8_333_333.33)
    assert p.dollars_per_sample.spot == pytest.approx(0.005)
    # one GPU renders 86400/60 = 1440 samples/day: 1.44M/day needs exactly 1000 workers
    assert p.samples_per_day_per_worker == 1440
    assert p.workers_for_target == 1000
    assert p.days == pytest.approx(500e6 / 1_440_000)
    assert p.days_at_max_workers == pytest.approx(500e6 / (2000 * 1440))
    assert p.shards == 500_000


@pytest.mark.parametrize(
    ("samples", "gpu_s", "target", "workers"),
    [
        (1_000, 60, 1440, 1),  # exactly one worker's day
        (1_000, 60, 1441, 2),  # one more sample needs a second worker
        (10_000_000, 60, 170_000, 119),  # the phase-1 plan: 118.06 -> 119
        (1_000, 30, 2880, 1),
    ],
)
def test_workers_for_target_round_up(samples: int, gpu_s: float, target: int, workers: int) -> None:
    spec = builders.spec(PLANNED, samples=samples, shardSize=100, throughput={"targetPerDay": target}, workers={"max": 500})
    assert capacity_plan(spec, inputs=PlanInputs(gpu_seconds_per_sample=gpu_s)).workers_for_target == workers


def test_gpus_per_worker_multiply_throughput() -> None:
    spec = builders.spec(PLANNED, nodePool={"gpusPerWorker": 4}, throughput={"targetPerDay": 1440 * 8})
    p = capacity_plan(spec)
    assert p.samples_per_day_per_worker == 4 * 1440
    assert p.workers_for_target == 2


def test_spot_rework_and_share() -> None:
    spec = builders.spec(PLANNED, samples=3600, shardSize=100, pricing={"spotPerGpuHour": 1.0, "onDemandPerGpuHour": 2.0})
    p = capacity_plan(spec, inputs=PlanInputs(gpu_seconds_per_sample=1, spot_rework=0.1, spot_share=0.5))
    assert p.gpu_hours == 1.0
    assert p.cost.spot == pytest.approx(1.1)
    assert p.cost.on_demand == pytest.approx(2.0)
    assert p.cost.mix == pytest.approx(0.5 * 1.1 + 0.5 * 2.0)


def test_extra_passes_split_of_bytes() -> None:
    assert rgb_fraction(["rgb"]) == 1.0
    assert rgb_fraction(["rgb", "depth"]) == pytest.approx(1 / 1.5)
    p = capacity_plan(builders.spec(PLANNED, render={"passes": ["rgb"]}), inputs=PlanInputs(bytes_per_sample=1e6))
    assert p.storage_bytes_rgb_only == p.storage_bytes == 5e14


def test_assumptions_say_where_numbers_come_from() -> None:
    spec = builders.spec(PLANNED, estimates={"gpuSecondsPerSample": 12})
    sources = {a.name: a.source for a in capacity_plan(spec, inputs=PlanInputs(bytes_per_sample=7)).assumptions}
    assert sources["gpuSecondsPerSample"] == "manifest (spec.estimates)"
    assert sources["bytesPerSample"] == "flag"
    assert sources["spotShare"] == "default"
    defaults = {a.name: a.source for a in capacity_plan(builders.spec(PLANNED)).assumptions}
    assert defaults["gpuSecondsPerSample"] == "default"


def test_warnings_for_unreachable_target_and_budget() -> None:
    spec = builders.spec(PLANNED, throughput={"targetPerDay": 170_000}, workers={"max": 75}, budget={"maxDollars": 10})
    warnings = " ".join(capacity_plan(spec).warnings)
    assert "workers.max is 75" in warnings
    assert "budget.maxDollars" in warnings


def test_plan_cli_json_has_the_contract_keys(tmp_path: Path) -> None:
    plain = wire(SMALL, samples=500_000_000, shardSize=1000, output={"uri": "s3://bucket/x"}, image="img",
                 throughput={"targetPerDay": 1_440_000})
    manifest = write_manifest(tmp_path / "m.yaml", plain, name="tiny")
    res = CliRunner().invoke(cli, ["plan", str(manifest), "--json", "--gpu-seconds-per-sample", "60",
                                   "--bytes-per-sample", "5000000"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["storageBytes"] == 2.5e15
    assert doc["gpuHours"] == pytest.approx(8_333_333.33)
    assert set(doc["costDollars"]) >= {"onDemand", "spot"}
    assert doc["workersForTarget"] == 1000
    assert doc["days"] > 0
    assert {a["name"]: a["source"] for a in doc["assumptions"]}["gpuSecondsPerSample"] == "flag"


def test_plan_cli_table_marks_assumptions(tmp_path: Path) -> None:
    manifest = Path(__file__).parents[2] / "examples" / "phase1-foundation.yaml"
    res = CliRunner().invoke(cli, ["plan", str(manifest)])
    assert res.exit_code == 0, res.output
    assert "50.00 TB" in res.output
    assert "assumptions" in res.output
    assert "119" in res.output


def test_workers_for_deadline() -> None:
    from datetime import UTC, datetime

    spec = builders.spec(PLANNED, samples=1_440_000, throughput={"deadline": "2026-01-11T00:00:00Z"}, workers={"max": 50})
    p = capacity_plan(spec, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert p.workers_for_deadline == 100  # 1.44M samples in 10 days at 1440/day/worker
    assert any("deadline needs 100 workers" in w for w in p.warnings)
