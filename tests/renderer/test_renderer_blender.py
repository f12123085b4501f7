"""The Blender driver: geometry lands where the camera matrices say, masks match the scene."""

from __future__ import annotations

from typing import Any

import builders
import numpy as np
import pytest
from builders import RENDER

from synth_contract.api import ALL_CATEGORIES
from synth_render import post
from synth_render.sample import plan_sample, render_sample
from synth_render.scene import Camera, Light, Material, Part, Scene, SceneObject, World

pytestmark = pytest.mark.blender


def _ball_scene(center: tuple[float, float, float], radius: float, cam: Camera) -> Scene:
    ball = SceneObject(id=9, cls="sphere", parts=(Part("sphere", Material(color=(0.9, 0.2, 0.2))),),
                       location=center, scale=(2 * radius,) * 3)
    return Scene(category="geometry", objects=(ball,), lights=(Light("sun", (0.0, 0.0, 5.0), energy=3.0),),
                 camera=cam, world=World(color=(0.1, 0.1, 0.1)))


@pytest.mark.parametrize("roll", [0.0, 0.4])
def test_a_known_point_lands_where_the_camera_matrices_project_it(renderer: Any, roll: float) -> None:
    width, height = 120, 80
    cam = Camera(location=(3.0, -4.0, 2.0), look_at=(0.0, 0.0, 0.5), focal_mm=35.0, roll=roll)
    center, radius = (0.8, 0.6, 0.9), 0.12
    out = renderer.render(_ball_scene(center, radius, cam), width=width, height=height, spp=1, denoise=False,
                          seed=1, normals=False)
    seg = post.encode_segmentation(out.index)
    ys, xs = np.nonzero(seg == 9)
    assert len(xs) > 20
    k, e = post.intrinsics(cam, width, height), post.extrinsics(cam)
    uv, z = post.project(np.array([center]), k, e)
    # Pixel (x, y) covers [x, x+1) x [y, y+1): its centre is at x + 0.5.
    np.testing.assert_allclose([xs.mean() + 0.5, ys.mean() + 0.5], uv[0], atol=0.6)
    # The depth pass is planar (camera z), not the distance along the ray: the nearest point of the
    # ball is about z - radius away.
    assert float(out.depth[seg == 9].min()) == pytest.approx(z[0] - radius, abs=0.03)
    assert (out.depth[seg == 0] > post.BACKGROUND_DEPTH).all()


@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_each_category_renders_with_masks_and_boxes_matching_its_objects(renderer: Any, category: str) -> None:
    spec = builders.spec(RENDER, categories=[{"name": category}], render={**RENDER["render"], "passes": ["rgb", "depth", "segmentation"]})
    plan = plan_sample(spec, 2)
    sample = render_sample(spec, plan, renderer, dataset="t")
    meta = sample.meta
    assert meta["category"] == category and set(sample.files) == {"png", "json", "txt", "depth.png", "seg.png"}
    scene_ids = {o["id"]: o["cls"] for o in meta["scene"]["objects"]}
    from io import BytesIO

    from PIL import Image

    seg = np.asarray(Image.open(BytesIO(sample.files["seg.png"])))
    rgb = np.asarray(Image.open(BytesIO(sample.files["png"])))
    assert rgb.shape == (64, 64, 3) and seg.shape == (64, 64)
    visible = set(np.unique(seg).tolist()) - {0}
    assert visible and visible <= set(scene_ids)
    assert [o["id"] for o in meta["objects"]] == sorted(visible)
    for o in meta["objects"]:
        assert o["class"] == scene_ids[o["id"]]
        ys, xs = np.nonzero(seg == o["id"])
        assert o["bbox"] == [xs.min(), ys.min(), xs.max(), ys.max()]
        assert 0 <= o["bbox"][0] <= o["bbox"][2] < 64 and 0 <= o["bbox"][1] <= o["bbox"][3] < 64
        assert o["pixels"] == len(xs)
    assert 0.0 <= meta["quality"]["score"] <= 1.0
    k = np.array(meta["camera"]["intrinsics"])
    assert k.shape == (3, 3) and np.array(meta["camera"]["extrinsics"]).shape == (4, 4)


def test_no_data_block_leaks_between_samples(renderer: Any) -> None:
    spec = builders.spec(RENDER, samples=24)
    render_sample(spec, plan_sample(spec, 0), renderer, dataset="t")
    before = renderer.datablock_counts()
    for index in range(1, 12):
        render_sample(spec, plan_sample(spec, index), renderer, dataset="t")
    assert renderer.datablock_counts() == before


def test_a_sample_renders_identically_twice(renderer: Any) -> None:
    spec = builders.spec(RENDER)
    a = render_sample(spec, plan_sample(spec, 5), renderer, dataset="t")
    render_sample(spec, plan_sample(spec, 6), renderer, dataset="t")
    b = render_sample(spec, plan_sample(spec, 5), renderer, dataset="t")
    assert a.files == b.files


def test_samples_under_the_minimum_score_are_rerendered_with_derived_seeds(renderer: Any) -> None:
    from synth_contract import planning

    spec = builders.spec(RENDER, quality={**RENDER["quality"], "minScore": 1.0, "maxRerenders": 2})
    s = render_sample(spec, plan_sample(spec, 3), renderer, dataset="t")
    assert s.attempts == 3 and not s.passed and s.meta["quality"]["attempts"] == 3
    assert s.meta["renderSeed"] in {planning.derived_seed(s.meta["seed"], a) for a in range(3)}
