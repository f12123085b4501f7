"""Rendered with Blender: settled, framed scenes seen through the sensor keep their labels aligned."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from synth_contract.api import SynthDatasetSpec
from synth_render import groundtruth, sensor
from synth_render.sample import plan_sample, render_sample

pytestmark = [pytest.mark.blender, pytest.mark.slow]


def _spec() -> SynthDatasetSpec:
    return SynthDatasetSpec.model_validate({
        "samples": 4, "seed": 11,
        "categories": [{"name": "composition"}, {"name": "geometry"}],
        "render": {"device": "cpu", "resolutions": [{"width": 96, "height": 96}], "samples": {"min": 2, "max": 2},
                   "denoise": False, "passes": ["rgb", "depth", "segmentation"], "sensor": {"enabled": True}},
        "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0},
        "output": {"uri": "file:///tmp/unused"}, "image": "test"})


@pytest.mark.parametrize("index", [0, 1])
def test_projected_3d_boxes_cover_the_masks_through_the_distorted_camera(renderer: Any, index: int) -> None:
    spec = _spec()
    done = render_sample(spec, plan_sample(spec, index), renderer, dataset="t")
    meta = done.meta
    assert meta["scene"]["physics"]["engine"].startswith("pybullet")
    assert meta["sensor"]["applied"] and meta["camera"]["distortion"]["k1"] == meta["sensor"]["distortion"]["k1"]
    k = np.asarray(meta["camera"]["intrinsics"])
    d = meta["camera"]["distortion"]
    dist = np.array([d["k1"], d["k2"], d["p1"], d["p2"]])
    checked = 0
    for obj in meta["objects"]:
        if "box3d" not in obj or obj["pixels"] < 4:
            continue
        outline = sensor.box_outline(groundtruth.box_corners(obj["box3d"]), k, dist)
        x0, y0, x1, y1 = obj["bbox"]  # inclusive pixel box of the (warped) mask
        assert outline[:, 0].min() <= x0 + 1.5 and outline[:, 1].min() <= y0 + 1.5, (obj["id"], obj["bbox"])
        assert outline[:, 0].max() >= x1 - 0.5 and outline[:, 1].max() >= y1 - 0.5, (obj["id"], obj["bbox"])
        checked += 1
    assert checked >= 1


def test_a_rerender_reproduces_the_settled_scene_and_the_sensor(renderer: Any) -> None:
    spec = _spec()
    a = render_sample(spec, plan_sample(spec, 2), renderer, dataset="t")
    b = render_sample(spec, plan_sample(spec, 2), renderer, dataset="t")
    assert a.meta["scene"]["objects"] == b.meta["scene"]["objects"]
    assert a.meta["sensor"] == b.meta["sensor"]
    assert a.files["png"] == b.files["png"] and a.files["seg.png"] == b.files["seg.png"]
