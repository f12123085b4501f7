"""`synthctl plan` / `simulate` count every view of a multi-view sample in GPU time and bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from builders import SMALL, spec, wire
from views_helpers import plan_json

from parallel_synth.decisions.renderpods import shard_bytes
from parallel_synth.simulator.fleet import simulate
from parallel_synth.simulator.model import SimConfig
from synth_contract import multiview


def _wire(views: int) -> dict[str, Any]:
    return wire(SMALL, samples=2000, shardSize=100, output={"uri": "s3://bucket/x"}, image="img",
                estimates={"gpuSecondsPerSample": 10, "bytesPerSample": 1_000_000},
                render={"passes": ["rgb", "depth", "segmentation", "flow"], "views": {"count": views}},
                workers={"min": 1, "max": 4})


def _plan(tmp_path: Path, views: int, *flags: str) -> dict[str, Any]:
    return plan_json(tmp_path / f"m{views}.yaml", _wire(views), *flags, name="mv")


def test_plan_counts_every_view_in_gpu_seconds_and_bytes(tmp_path: Path) -> None:
    one, eight = _plan(tmp_path, 1), _plan(tmp_path, 8)
    assert one["views"] == 1 and eight["views"] == 8
    share = multiview.EXTRA_VIEW_GPU_SHARE
    bake = eight["bakeSecondsPerSample"]  # simulations bake once per sample, however many views
    assert bake == one["bakeSecondsPerSample"]
    assert eight["gpuSecondsPerSample"] == pytest.approx(10 * (1 + 7 * share) + bake)
    assert eight["gpuHours"] == pytest.approx(2000 * (10 * (1 + 7 * share) + bake) / 3600)
    assert (eight["costDollars"]["onDemand"] / one["costDollars"]["onDemand"]
            == pytest.approx((10 * (1 + 7 * share) + bake) / (10 + bake)))
    # Bytes: the single-view sample plus 8 copies of every pass but flow (view 0's only).
    w = {"rgb": 1.0, "depth": 0.5, "segmentation": 0.05, "flow": 0.3}
    base = sum(w.values())
    factor = (base + 8 * (base - w["flow"])) / base
    assert eight["bytesPerSample"] == pytest.approx(1_000_000 * factor)
    assert eight["bytesPerPass"]["views"] == pytest.approx(1_000_000 * 8 * (base - w["flow"]) / base)
    assert sum(eight["bytesPerPass"].values()) == pytest.approx(eight["bytesPerSample"])
    assert "render.views.count 8" in next(a["note"] for a in eight["assumptions"] if a["name"] == "gpuSecondsPerSample")


def test_a_measured_figure_from_a_flag_is_the_whole_sample_and_is_not_scaled(tmp_path: Path) -> None:
    plan = _plan(tmp_path, 8, "--gpu-seconds-per-sample", "30", "--bytes-per-sample", "5000000")
    assert plan["gpuSecondsPerSample"] == 30 and plan["bytesPerSample"] == 5_000_000


def test_simulate_and_render_pod_storage_count_the_views() -> None:
    one = spec(_wire(1))
    four = spec(_wire(4))
    cfg = SimConfig(jitter=0.0, pod_startup_seconds=0.0, node_provision_seconds=0.0)
    r1, r4 = simulate("one", one, cfg), simulate("four", four, cfg)
    assert r1.samples_completed == r4.samples_completed == 2000
    gpu1 = r1.spot_gpu_hours + r1.on_demand_gpu_hours
    gpu4 = r4.spot_gpu_hours + r4.on_demand_gpu_hours
    assert gpu4 / gpu1 == pytest.approx(multiview.gpu_factor(four), rel=0.05)
    assert shard_bytes(four) / shard_bytes(one) == pytest.approx(multiview.bytes_factor(four), rel=1e-6)
