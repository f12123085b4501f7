"""Camera patterns of multi-view samples and the dataset-side view checks (no Blender)."""

from __future__ import annotations

import math

import builders
import numpy as np
import pytest
from builders import SMALL, wire

from synth_contract import multiview
from synth_contract.api import SynthDatasetSpec
from synth_contract.multiview import sample_members
from synth_render import post
from synth_render.scene import Camera
from synth_render.views import ViewParams, view_cameras, world_point

MAIN = Camera(location=(4.0, -3.0, 2.0), look_at=(0.0, 0.0, 0.5), focal_mm=35.0)


def _spherical(cam: Camera) -> tuple[float, float, float]:
    d = np.subtract(cam.location, cam.look_at)
    r = float(np.linalg.norm(d))
    return r, math.degrees(math.atan2(d[1], d[0])), math.degrees(math.asin(d[2] / r))


@pytest.mark.parametrize("pattern", ["orbit", "arc", "stereo", "random"])
def test_view_zero_is_the_scene_camera_and_every_view_sees_the_look_at_point(pattern: str) -> None:
    cams = view_cameras(MAIN, ViewParams(count=5, pattern=pattern), seed=7)
    assert len(cams) == 5 and cams[0] == MAIN
    assert len({c.location for c in cams}) == 5
    for cam in cams:  # the look-at point (or the rig's shifted one) projects to the image centre
        uv, z = post.project(np.array([cam.look_at]), post.intrinsics(cam, 64, 48), post.extrinsics(cam))
        np.testing.assert_allclose(uv[0], [32, 24], atol=1e-6)
        assert z[0] > 0


def test_orbit_goes_evenly_around_at_one_radius_and_elevation() -> None:
    cams = view_cameras(MAIN, ViewParams(count=4, pattern="orbit"), seed=0)
    r0, az0, el0 = _spherical(MAIN)
    for k, cam in enumerate(cams):
        r, az, el = _spherical(cam)
        assert r == pytest.approx(r0) and el == pytest.approx(el0)
        assert (az - az0 - 90 * k + 180) % 360 - 180 == pytest.approx(0, abs=1e-6)


def test_arc_covers_the_span_around_view_zero_and_radius_and_elevation_apply() -> None:
    cams = view_cameras(MAIN, ViewParams(count=5, pattern="arc", span_degrees=60, radius=3.0, elevation=(30, 40)),
                        seed=0)
    _, az0, _ = _spherical(MAIN)
    offsets = sorted(round((_spherical(c)[1] - az0 + 180) % 360 - 180, 6) for c in cams[1:])
    assert offsets == pytest.approx([-30, -15, 15, 30])
    for cam in cams[1:]:
        r, _, el = _spherical(cam)
        assert r == pytest.approx(3.0) and el == pytest.approx(30.0)  # clamped into [30, 40]


def test_stereo_is_a_parallel_rig_with_the_baseline_along_the_camera_x_axis() -> None:
    left, right = view_cameras(MAIN, ViewParams(count=2, pattern="stereo", baseline=0.25), seed=0)
    e_l, e_r = post.extrinsics(left), post.extrinsics(right)
    np.testing.assert_allclose(e_l[:3, :3], e_r[:3, :3], atol=1e-9)
    # The right camera's centre is 0.25 m along the left camera's +x.
    centre_r = -e_r[:3, :3].T @ e_r[:3, 3]
    np.testing.assert_allclose((e_l[:3, :3] @ centre_r + e_l[:3, 3]), [0.25, 0, 0], atol=1e-9)


def test_random_views_are_seeded_and_stay_within_the_elevation_range() -> None:
    p = ViewParams(count=8, pattern="random", elevation=(10, 20))
    a, b, c = view_cameras(MAIN, p, seed=3), view_cameras(MAIN, p, seed=3), view_cameras(MAIN, p, seed=4)
    assert a == b and a != c
    assert all(10 - 1e-9 <= _spherical(cam)[2] <= 20 + 1e-9 for cam in a[1:])


def test_a_pixel_and_its_depth_unproject_to_the_world_point() -> None:
    point = np.array([0.3, 0.2, 0.9])
    k, e = post.intrinsics(MAIN, 64, 64), post.extrinsics(MAIN)
    uv, z = post.project(point[None], k, e)
    np.testing.assert_allclose(world_point(uv[0][0], uv[0][1], z[0], k, e), point, atol=1e-9)


TINY = wire(SMALL, samples=4, image="r:t")


def _spec(**views: object) -> SynthDatasetSpec:
    return builders.spec(TINY, render={"passes": ["rgb", "depth", "segmentation", "flow"], "views": views})


def test_members_of_a_multi_view_sample_are_every_pass_but_flow_per_view() -> None:
    members = sample_members(_spec(count=2))
    assert {"view00.png", "view01.png", "view00.seg.png", "view01.depth.png"} <= members
    assert "view01.flow.exr" not in members and "flow.exr" in members
    assert not any(m.startswith("view") for m in sample_members(_spec()))


def test_views_metadata_problems_name_the_field() -> None:
    ok = {"view": 0, "intrinsics": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "extrinsics": np.eye(4).tolist(),
          "objects": [{"id": 1}]}
    meta = {"scene": {"objects": [{"id": 1}]}, "views": [ok, {**ok, "view": 1}]}
    assert multiview.views_problems(meta, count=2) == []
    assert multiview.views_problems(meta, count=3) == ["views has 2 entries, render.views.count is 3"]
    assert multiview.views_problems({}, count=2) == ["views is missing (render.views.count is 2)"]
    bad = {**meta, "views": [ok, {**ok, "view": 1, "extrinsics": [[1]], "objects": [{"id": 9}]}]}
    assert multiview.views_problems(bad, count=2) == [
        "views[1].extrinsics is not a 4x4 matrix", "views[1].objects has ids [9] that are not objects of the scene"]


@pytest.mark.parametrize(("views", "message"), [
    ({"count": 0}, "count"), ({"pattern": "spiral"}, "pattern"), ({"elevation": {"min": 50, "max": 10}}, "min"),
])
def test_bad_views_settings_are_refused_naming_the_field(views: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**views)


def test_views_and_frames_together_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot both be > 1"):
        builders.spec(TINY, render={"views": {"count": 2}, "frames": {"count": 2}})


def test_a_frame_moves_objects_by_their_velocity_and_orbits_the_camera() -> None:
    from synth_render import frames as fr
    from synth_render.scene import Material, Part, Scene, SceneObject

    still = SceneObject(id=1, cls="cube", parts=(Part("cube", Material()),), location=(1.0, 0.0, 0.5))
    mover = SceneObject(id=2, cls="cube", parts=(Part("cube", Material()),), location=(0.0, 0.0, 0.5),
                        velocity=(0.1, -0.2, 0.0))
    scene = Scene(category="motion", objects=(still, mover), lights=(), camera=MAIN)
    at3 = fr.scene_at(scene, 3)
    assert at3.objects[0] == still and at3.objects[1].location == pytest.approx((0.3, -0.6, 0.5))
    assert [o.id for o in at3.objects] == [1, 2]
    cams = fr.frame_cameras(MAIN, fr.FrameParams(count=4, camera_degrees_per_frame=10.0))
    r0, az0, el0 = _spherical(MAIN)
    for t, cam in enumerate(cams):
        r, az, el = _spherical(cam)
        assert r == pytest.approx(r0) and el == pytest.approx(el0) and cam.look_at == MAIN.look_at
        assert (az - az0 - 10 * t + 180) % 360 - 180 == pytest.approx(0, abs=1e-6)
    assert fr.frame_cameras(MAIN, fr.FrameParams(count=3)) == (MAIN,) * 3


def test_members_of_a_sequence_are_every_pass_per_frame_flow_included() -> None:
    spec = builders.spec(TINY, render={"passes": ["rgb", "segmentation", "flow"], "frames": {"count": 3}})
    members = sample_members(spec)
    assert {"frame000.png", "frame002.seg.png", "frame001.flow.exr"} <= members
    assert not any(m.startswith("view") for m in members)
    assert multiview.split_member("frame012.seg.png") == (12, "seg.png")
    assert multiview.split_member("view03.png") == (3, "png")
