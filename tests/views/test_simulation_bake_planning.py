"""`synthctl plan` / `simulate` bill the bake of fluids/effects simulations as GPU time (issue #15 item 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import builders
import pytest
from builders import SMALL, wire
from click.testing import CliRunner
from views_helpers import plan_json

from parallel_synth.commands.cli import cli
from synth_contract import multiview, simcost

BAKED = wire(SMALL, samples=1200, shardSize=100, output={"uri": "s3://bucket/x"}, image="img",
             estimates={"gpuSecondsPerSample": 10, "bytesPerSample": 1_000_000})


def _plan(tmp_path: Path, categories: list[dict[str, Any]], *flags: str) -> dict[str, Any]:
    return plan_json(tmp_path / "m.yaml", wire(BAKED, categories=categories), *flags, name="sim")


def test_geometry_only_bakes_nothing(tmp_path: Path) -> None:
    spec = builders.spec(BAKED, categories=[{"name": "geometry"}])
    assert simcost.bake_seconds_per_sample(spec) == 0
    assert multiview.estimated_gpu_seconds_per_sample(spec) == 10
    plan = _plan(tmp_path, [{"name": "geometry"}])
    assert plan["bakeSecondsPerSample"] == 0 and plan["gpuSecondsPerSample"] == 10


def test_fluids_and_effects_add_their_simulated_share_times_the_bake(tmp_path: Path) -> None:
    cats = [{"name": "geometry", "weight": 2}, {"name": "fluids"}, {"name": "effects"}]
    liquid, smoke, fire = (simcost.BAKE_SECONDS[k] for k in ("liquid", "smoke", "fire"))
    # a quarter of the samples are fluids (half of them pour/fill/splash), a quarter effects (smoke, fire: 1/6 each)
    expected = 0.25 * 0.5 * liquid + 0.25 * (smoke + fire) / 6
    spec = builders.spec(BAKED, categories=cats)
    assert simcost.bake_seconds_per_sample(spec) == pytest.approx(expected)
    assert multiview.estimated_gpu_seconds_per_sample(spec) == pytest.approx(10 + expected)
    plan = _plan(tmp_path, cats)
    assert plan["bakeSecondsPerSample"] == pytest.approx(expected)
    assert plan["gpuSecondsPerSample"] == pytest.approx(10 + expected)
    assert plan["gpuHours"] == pytest.approx(1200 * (10 + expected) / 3600)
    human = CliRunner().invoke(cli, ["plan", str(tmp_path / "m.yaml")])
    assert human.exit_code == 0 and "bake of simulations" in human.output


def test_a_measured_flag_is_the_whole_sample_and_gets_no_bake_added(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [{"name": "fluids"}], "--gpu-seconds-per-sample", "30")
    assert plan["gpuSecondsPerSample"] == 30 and plan["bakeSecondsPerSample"] == 0


@pytest.mark.parametrize("category", ["fluids", "effects", "geometry"])
def test_the_plans_simulated_shares_are_what_the_generators_emit(category: str) -> None:
    """simcost keeps its own table (the operator does not import the renderer): it must match the scenes."""
    from synth_render.sample import plan_sample, scene_for

    spec = builders.spec(builders.RENDER, samples=120, categories=[{"name": category}])
    counts: dict[str, int] = {}
    for index in range(120):
        scene, _ = scene_for(spec, plan_sample(spec, index))
        for kind in {o.simulation.kind for o in scene.objects if o.simulation is not None}:
            counts[kind] = counts.get(kind, 0) + 1
    shares = {kind: n / 120 for kind, n in counts.items()}
    expected = simcost.SIMULATED_SHARE.get(category, {})
    assert set(shares) == set(expected)
    for kind, share in expected.items():
        assert shares[kind] == pytest.approx(share, abs=0.05), kind
