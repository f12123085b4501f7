"""`synthctl plan` / `simulate` bill the bake of fluids/effects simulations as GPU time (issue #15 item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from parallel_synth.commands.cli import cli
from synth_contract import multiview, simcost
from synth_contract.api import SynthDatasetSpec


def _wire(categories: list[dict[str, Any]]) -> dict[str, Any]:
    return {"samples": 1200, "shardSize": 100, "output": {"uri": "s3://bucket/x"}, "image": "img",
            "estimates": {"gpuSecondsPerSample": 10, "bytesPerSample": 1_000_000}, "categories": categories}


def _plan(tmp_path: Path, categories: list[dict[str, Any]], *flags: str) -> dict[str, Any]:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
                                    "metadata": {"name": "sim"}, "spec": _wire(categories)}))
    res = CliRunner().invoke(cli, ["plan", str(path), "--json", *flags])
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.output))


def test_geometry_only_bakes_nothing(tmp_path: Path) -> None:
    spec = SynthDatasetSpec.model_validate(_wire([{"name": "geometry"}]))
    assert simcost.bake_seconds_per_sample(spec) == 0
    assert multiview.estimated_gpu_seconds_per_sample(spec) == 10
    plan = _plan(tmp_path, [{"name": "geometry"}])
    assert plan["bakeSecondsPerSample"] == 0 and plan["gpuSecondsPerSample"] == 10


def test_fluids_and_effects_add_their_simulated_share_times_the_bake(tmp_path: Path) -> None:
    cats = [{"name": "geometry", "weight": 2}, {"name": "fluids"}, {"name": "effects"}]
    liquid, smoke, fire = (simcost.BAKE_SECONDS[k] for k in ("liquid", "smoke", "fire"))
    # a quarter of the samples are fluids (half of them pour/fill/splash), a quarter effects (smoke, fire: 1/6 each)
    expected = 0.25 * 0.5 * liquid + 0.25 * (smoke + fire) / 6
    spec = SynthDatasetSpec.model_validate(_wire(cats))
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
