"""The simulator under a Kueue quota (issue #17): the rate a team gets is the quota's, and an ETA.

The quota is the only bound here (target and workers.max far above it), so the attained rate
must be the quota's GPUs times the per-GPU rate (86400 / gpuSecondsPerSample), less the start-up
overhead of each pod (60 s per 100-sample shard of 10 s samples: 6% on one GPU, 12% on two).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from builders import FLEET, spec, wire, write_manifest
from click.testing import CliRunner

from parallel_synth.commands.cli import cli
from parallel_synth.simulator.fleet import simulate
from parallel_synth.simulator.model import SimConfig

SECONDS_PER_SAMPLE = 10.0
STARTUP = 60.0  # seconds of pod start-up per 100-sample shard (SimConfig.pod_startup_seconds)


QUOTA = wire(FLEET, samples=10_000_000, estimates={"gpuSecondsPerSample": SECONDS_PER_SAMPLE})


def run(quota: int, *, days: float = 2.0, schedule: tuple[tuple[float, int], ...] = (), **overrides: Any) -> Any:
    cfg = SimConfig(days=days, quota_gpus=quota, quota_schedule=schedule, tick_seconds=1800, jitter=0.0)
    return simulate("q", spec(QUOTA, **overrides), cfg)


@pytest.mark.parametrize(("quota", "gpus_per_worker"), [(3, 1), (12, 1), (8, 2)])
def test_attained_rate_is_the_quotas(quota: int, gpus_per_worker: int) -> None:
    r = run(quota, nodePool={"gpusPerWorker": gpus_per_worker})
    overhead = STARTUP / (100 * SECONDS_PER_SAMPLE / gpus_per_worker)  # a pod renders on all its GPUs
    expected = quota * 86_400 / SECONDS_PER_SAMPLE / (1 + overhead)
    rate = r.samples_completed / r.elapsed_days
    assert expected * 0.95 <= rate <= expected * 1.01, (rate, expected)
    assert r.quota_per_day == pytest.approx(quota * 86_400 / SECONDS_PER_SAMPLE)
    assert r.peak_workers == quota // gpus_per_worker  # never more pods than the quota admits
    assert r.admitted_gpus == pytest.approx(quota, rel=0.02)
    assert r.final_status["workers"]["admitted"] == quota // gpus_per_worker  # Kueue-style status
    assert r.final_status["workers"]["waiting"] > 0  # the autoscaler wants more than the quota


def test_a_shrinking_quota_evicts_as_preemptions_and_no_work_is_lost() -> None:
    r = run(6, days=3.0, schedule=((1.0, 2),))
    # Kueue evicts whole Jobs (kueue.py): the one Job of 6 pods goes, and is admitted again with 2;
    # decide_batch counts the eviction as preemptions of the pods it had, never as a retry
    assert r.kueue_evictions == 6 and r.preemptions == 6 and r.retries == 0
    assert r.final_status["preemptions"] == 6 and r.event_reasons["Evicted"] == 1
    assert r.duplicate_commits == 0 and r.shards_failed == 0
    first, *rest = r.days
    assert [d.quota_gpus for d in r.days] == [6, 2, 2]
    for d in rest:  # a third of the first day's rate once the quota is a third
        assert d.samples == pytest.approx(first.samples / 3, rel=0.08)
    assert {m for _, m in r.capacity_switches} == {"spot"}  # Kueue's flavors decide, not the spot fallback


def test_cli_prints_the_rate_and_eta_the_quota_gives(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "ds.yaml", spec(QUOTA, samples=200_000).wire(), name="q")
    full = CliRunner().invoke(cli, ["simulate", str(manifest), "--quota", "4", "--tick", "1800", "--quiet"])
    assert full.exit_code == 0, full.output
    assert "Kueue quota 4 GPUs" in full.output and "(finished)" in full.output
    finished_in = float(full.output.split(" samples in ")[1].split(" days")[0])
    part = CliRunner().invoke(cli, ["simulate", str(manifest), "--quota", "4", "--tick", "1800", "--days", "2"])
    assert part.exit_code == 0 and "admitted/quota GPUs" in part.output
    eta = float(part.output.split("ETA under this quota: ")[1].split(" days")[0])
    assert eta == pytest.approx(finished_in, rel=0.05)  # the projection after 2 days matches the finished run
    bad = CliRunner().invoke(cli, ["simulate", str(manifest), "--quota", "4", "--quota-change", "two:1"])
    assert bad.exit_code == 2 and "--quota-change" in bad.output
