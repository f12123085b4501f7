"""Simulated liquids, smoke and fire: deterministic seeded solvers, bounded bakes, a per-worker cache, labels."""

from __future__ import annotations

import json
import math
import time
from io import BytesIO
from typing import Any

import builders
import numpy as np
import pytest
from builders import RENDER
from PIL import Image

from synth_render import fluid_solvers, post, simulation, volume_labels
from synth_render.sample import plan_sample, render_sample
from synth_render.scene import Camera, Simulation

GLASS = (0.1, -0.2, 0.04, 0.01, 0.12)  # x, y, inner radius, inner floor z, rim z


def _fill(seed: int = 7, tier: int = 0) -> Simulation:
    return Simulation(kind="liquid", scenario="fill", seed=seed, tier=tier, origin=(0.1, -0.2, 0.0),
                      size=(0.25, 0.25, 0.2), container=GLASS, ground=0.0,
                      volume=math.pi * 0.04**2 * 0.05)


def _smoke(seed: int = 3) -> Simulation:
    return Simulation(kind="smoke", scenario="plume", seed=seed, tier=0, origin=(0.0, 0.0, 0.0),
                      size=(1.2, 1.2, 1.8), angle=0.5, wind=0.04, density=8.0)


@pytest.mark.parametrize("make", [_fill, _smoke])
def test_a_bake_is_the_same_for_the_same_seed_and_differs_for_another(make: Any) -> None:
    a, b, c = simulation.bake(make(seed=5)), simulation.bake(make(seed=5)), simulation.bake(make(seed=6))
    assert not a.cut and a.steps_done == a.steps
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)


@pytest.mark.parametrize("tier", [0, 2])
def test_a_filled_glass_keeps_every_particle_inside_it(tier: int) -> None:
    res = simulation.bake(_fill(tier=tier))
    x, y, r_in, floor, rim = GLASS
    assert len(res.points) == fluid_solvers.LIQUID_PARTICLES[tier]  # none lost, none created
    assert np.isfinite(res.points).all()
    radial = np.hypot(res.points[:, 0] - x, res.points[:, 1] - y)
    assert radial.max() <= r_in + 1e-5
    assert res.points[:, 2].min() >= floor
    assert res.points[:, 2].max() < rim  # settled below the rim, not sprayed over it
    # It is a liquid, not a pile on the floor: the particles stack up to several layers.
    assert np.ptp(res.points[:, 2]) > 3 * res.radius


def test_a_bake_past_its_budget_is_cut_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(simulation.BUDGET_ENV, "0.05")
    t0 = time.perf_counter()
    cache = simulation.SimCache(2**24)
    res, hit = cache.get(_fill(tier=2))
    assert time.perf_counter() - t0 < 5.0  # stopped stepping, not hung
    report = res.report(cache_hit=hit)
    assert report["cut"] is True and report["stepsDone"] < report["steps"] == fluid_solvers.STEPS["liquid"]
    assert len(res.points) == fluid_solvers.LIQUID_PARTICLES[2] and np.isfinite(res.points).all()
    assert len(cache) == 0  # a cut bake is not cached: a worker with more time may finish it


def test_the_cache_hits_on_a_repeat_and_stays_under_its_cap() -> None:
    cache = simulation.SimCache(2**24)
    first, hit1 = cache.get(_fill(seed=1))
    again, hit2 = cache.get(_fill(seed=1))
    assert (hit1, hit2) == (False, True) and again is first
    assert again.report(cache_hit=True)["cacheHit"] is True
    small = simulation.SimCache(first.nbytes + 10)  # room for one bake
    for seed in (1, 2, 1):
        small.get(_fill(seed=seed))
    assert len(small) == 1 and small.nbytes <= small.cap_bytes and (small.hits, small.misses) == (0, 3)


def test_smoke_pixels_are_where_the_volume_is_dense_in_front_of_the_surface() -> None:
    cam = Camera(location=(0.0, -3.0, 0.5), look_at=(0.0, 0.0, 0.5))
    k, e = post.intrinsics(cam, 64, 64), post.extrinsics(cam)
    rng = np.random.default_rng(0)
    ball = rng.normal(size=(2000, 3)) * 0.15 + np.array([0.0, 0.0, 0.5])
    far = np.full((64, 64), 1e10, dtype=np.float32)
    mask = volume_labels.volume_mask(ball, 0.05, 10.0, k, e, far)
    uv, _ = post.project(np.array([[0.0, 0.0, 0.5]]), k, e)
    assert mask[int(uv[0, 1]), int(uv[0, 0])] and 20 < mask.sum() < 64 * 64 / 2
    wall = np.full((64, 64), 2.0, dtype=np.float32)  # an opaque surface 1 m in front of the smoke
    assert not volume_labels.volume_mask(ball, 0.05, 10.0, k, e, wall).any()
    assert not volume_labels.volume_mask(ball, 0.05, 0.01, k, e, far).any()  # too thin to label


def _first(category: str, scenario_check: Any) -> Any:
    """(spec, plan, scene) of the first of 40 samples of ``category`` whose scene passes ``scenario_check``."""
    from synth_render.sample import scene_for

    spec = builders.spec(RENDER, samples=40, categories=[{"name": category}], render={**RENDER["render"], "passes": ["rgb", "depth", "segmentation"]})
    for index in range(40):
        plan = plan_sample(spec, index)
        scene, _ = scene_for(spec, plan)
        if scenario_check(scene):
            return spec, plan, scene
    raise AssertionError("no sample of the wanted kind in the first 40")


@pytest.mark.blender
def test_a_liquid_sample_renders_a_liquid_mask_whose_box_matches(renderer: Any) -> None:
    spec, plan, scene = _first("fluids", lambda s: s.params.get("kind") == "splash")
    sample = render_sample(spec, plan, renderer, dataset="t")
    meta = json.loads(sample.files["json"])
    liquid = [o for o in meta["objects"] if o["class"] == "liquid"]
    assert len(liquid) == 1 and liquid[0]["pixels"] > 20
    seg = np.asarray(Image.open(BytesIO(sample.files["seg.png"])))
    ys, xs = np.nonzero(seg == liquid[0]["id"])
    assert liquid[0]["bbox"] == [xs.min(), ys.min(), xs.max(), ys.max()]
    # The box is where the simulated particles project (within a particle radius or two).
    sim_obj = next(o for o in scene.objects if o.simulation is not None)
    assert sim_obj.simulation is not None
    res, _ = simulation.worker_cache().get(sim_obj.simulation)
    k, e = post.intrinsics(scene.camera, 64, 64), post.extrinsics(scene.camera)
    uv, _ = post.project(res.points.astype(np.float64), k, e)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < 64) & (uv[:, 1] >= 0) & (uv[:, 1] < 64)
    lo, hi = uv[inside].min(axis=0), uv[inside].max(axis=0)
    box = liquid[0]["bbox"]
    assert abs(box[0] - lo[0]) < 6 and abs(box[2] - hi[0]) < 6 and abs(box[1] - lo[1]) < 6 and abs(box[3] - hi[1]) < 6
    assert meta["simulation"]["solver"] == "pbf-grid" and meta["simulation"]["cut"] is False
    assert "seconds" not in meta["simulation"]  # no wall-clock in the sample JSON
    assert sample.simulation is not None and sample.simulation["stepsDone"] == sample.simulation["steps"]
    assert isinstance(sample.simulation["cacheHit"], bool) and sample.simulation["seconds"] >= 0
    assert "liquid" in sample.files["txt"].decode() or "liquid" in meta.get("caption", "")


@pytest.mark.blender
def test_a_fire_sample_labels_fire_and_smoke_and_bakes_once(renderer: Any) -> None:
    spec, plan, _ = _first("effects", lambda s: s.params.get("effect") == "fire")
    sample = render_sample(spec, plan, renderer, dataset="t")
    classes = {o["class"] for o in sample.meta["objects"]}
    assert {"fire", "smoke"} <= classes
    # Smoke over the sky has no surface behind it: the gate does not count that against the mask.
    assert not any("depth pass" in r for r in sample.meta["quality"]["reasons"])
    assert sample.simulation is not None and sample.simulation["kind"] == "fire"
    assert len(sample.meta["simulation"]["objects"]) == 2
    again = render_sample(spec, plan, renderer, dataset="t")
    assert again.simulation is not None and again.simulation["cacheHit"] is True
    assert again.files == sample.files  # a cache hit draws the same bake: the same sample


def test_a_simulated_object_has_bounds_for_placement_and_asset_swaps() -> None:
    from synth_render.placement import object_bounds
    from synth_render.scene import SceneObject

    lo, hi = object_bounds(SceneObject(id=1, cls="smoke", parts=(), simulation=_smoke()))
    np.testing.assert_allclose(lo, [-0.6, -0.6, 0.0])
    np.testing.assert_allclose(hi, [0.6, 0.6, 1.8])
