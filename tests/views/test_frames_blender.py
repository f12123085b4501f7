"""Sequences with the real renderer: per-frame files and ids, and a flow pass that is the motion."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import builders
import numpy as np
import pytest
from builders import OPEN_GATE, SMALL, wire, write_manifest
from PIL import Image

from synth_contract import planning
from synth_render import frames as fr
from synth_render import post
from synth_render.rendering import Extras
from synth_render.scene import Camera, Light, Material, Part, Scene, SceneObject

pytestmark = [pytest.mark.blender]
pytest.importorskip("bpy")

SIZE = 64
CAM = Camera(location=(0.0, -6.0, 1.5), look_at=(0.0, 0.0, 1.0), focal_mm=35.0)


def _scene(velocity: tuple[float, float, float]) -> Scene:
    box = SceneObject(id=3, cls="cube", parts=(Part("cube", Material(color=(0.9, 0.2, 0.2), pattern="checker")),),
                      location=(0.0, 0.0, 1.0), velocity=velocity)
    ground = Part("plane", Material(color=(0.6, 0.6, 0.6), pattern="checker", pattern_scale=3.0),
                  location=(0.0, 0.0, 0.0), scale=(30.0, 30.0, 1.0))
    wall = Part("cube", Material(color=(0.3, 0.6, 0.3), pattern="checker", pattern_scale=2.0),
                location=(0.0, 5.0, 3.0), scale=(30.0, 0.2, 6.0))
    return Scene(category="motion", objects=(box,), lights=(Light("sun", (0.0, 0.0, 5.0), energy=4.0),),
                 camera=CAM, background=(ground, wall))


def _expected_flow(depth: np.ndarray, cam_t: Camera, cam_next: Camera, shift: np.ndarray) -> np.ndarray:
    """Flow of every pixel from the geometry: unproject with depth, move by ``shift``, reproject."""
    k = post.intrinsics(cam_t, SIZE, SIZE)
    v, u = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    rays = np.linalg.inv(k) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    cam_pts = rays * depth.ravel()
    e = post.extrinsics(cam_t)
    world = (np.linalg.inv(e) @ np.vstack([cam_pts, np.ones(u.size)]))[:3].T + shift
    uv, _ = post.project(world, post.intrinsics(cam_next, SIZE, SIZE), post.extrinsics(cam_next))
    return (uv - np.stack([u.ravel(), v.ravel()], axis=1)).reshape(SIZE, SIZE, 2)


def _render(renderer: Any, scene: Scene, params: fr.FrameParams, spp: int = 1, denoise: bool = False) -> Any:
    return renderer.render(scene, width=SIZE, height=SIZE, spp=spp, denoise=denoise, seed=1, normals=False,
                           extras=Extras(flow=True), frames=fr.frame_cameras(scene.camera, params),
                           frame_motion_blur=params.motion_blur)


@pytest.mark.parametrize("blur", [False, True])
def test_flow_of_a_known_translation_and_of_an_orbiting_camera_is_the_geometric_motion(renderer: Any,
                                                                                        blur: bool) -> None:
    v = np.array([0.12, 0.0, 0.06])
    params = fr.FrameParams(count=3, camera_degrees_per_frame=1.5, motion_blur=blur)
    scene = _scene(tuple(v))  # type: ignore[arg-type]
    out = _render(renderer, scene, params)
    cams = fr.frame_cameras(CAM, params)
    for t, (flow, depth, index) in enumerate([(out.flow, out.depth, out.index)]
                                             + [(f.flow, f.depth, f.index) for f in out.frames]):
        seg = post.encode_segmentation(index)
        cam_next = fr.frame_camera(CAM, params, t + 1)
        for mask, shift in ((seg == 3, v), ((seg == 0) & (depth < 50), np.zeros(3))):
            inner = mask & ~np.pad(~mask, 1, constant_values=True)[2:, 1:-1]  # skip silhouette pixels
            err = np.linalg.norm(flow - _expected_flow(depth, cams[t], cam_next, shift), axis=-1)[inner]
            assert inner.sum() > 20
            assert float(np.median(err)) < 0.5, (t, float(np.median(err)))
    if blur:  # the moving box is smeared over the shutter: the blurred frame differs from the sharp one
        sharp = _render(renderer, scene, fr.FrameParams(count=3, camera_degrees_per_frame=1.5))
        assert not np.array_equal(post.linear_to_srgb8(sharp.frames[0].rgb), post.linear_to_srgb8(out.frames[0].rgb))


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``img`` (H, W, C) sampled at continuous pixel-index coordinates (x right, y down)."""
    x = np.clip(x, 0, img.shape[1] - 1.001)
    y = np.clip(y, 0, img.shape[0] - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    return ((1 - fx) * (1 - fy) * img[y0, x0] + fx * (1 - fy) * img[y0, x0 + 1]
            + (1 - fx) * fy * img[y0 + 1, x0] + fx * fy * img[y0 + 1, x0 + 1])


def test_warping_a_frame_by_its_flow_gives_the_next_frame_on_static_background(renderer: Any) -> None:
    params = fr.FrameParams(count=2, camera_degrees_per_frame=12.0)
    out = _render(renderer, _scene((0.1, 0.0, 0.0)), params, spp=16, denoise=True)  # noise is pixel-locked
    img0, img1 = post.linear_to_srgb8(out.rgb).astype(float), post.linear_to_srgb8(out.frames[0].rgb).astype(float)
    seg0, seg1 = post.encode_segmentation(out.index), post.encode_segmentation(out.frames[0].index)
    v, u = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    tu, tv = u + out.flow[..., 0], v + out.flow[..., 1]
    inside = (tu >= 0) & (tu <= SIZE - 1) & (tv >= 0) & (tv <= SIZE - 1)
    hit = seg1[np.clip(np.rint(tv).astype(int), 0, SIZE - 1), np.clip(np.rint(tu).astype(int), 0, SIZE - 1)]
    static = inside & (seg0 == 0) & (hit == 0)
    warped_err = np.abs(_bilinear(img1, tu, tv) - img0).mean(axis=-1)[static]
    still_err = np.abs(img1 - img0).mean(axis=-1)[static]
    assert static.sum() > SIZE * SIZE // 2
    # The camera moved: without the flow the frames differ; warped by it they agree up to noise and resampling.
    assert float(warped_err.mean()) < 0.5 * float(still_err.mean()), (float(warped_err.mean()), float(still_err.mean()))


def test_a_sequence_sample_has_every_pass_per_frame_and_stable_ids(renderer: Any) -> None:
    from synth_render.sample import plan_sample, render_sample

    spec = builders.spec(
        SMALL, samples=4, seed=4, output={"uri": "file:///tmp/unused"}, image="r:t",
        categories=[{"name": "motion", "weight": 1}], quality=OPEN_GATE,
        render={"resolutions": [{"width": 48, "height": 48}], "samples": {"min": 1, "max": 1}, "denoise": False,
                "passes": ["rgb", "segmentation", "depth", "flow"], "frames": {"count": 3}})
    first = render_sample(spec, plan_sample(spec, 1), renderer, dataset="t")
    counts = renderer.datablock_counts()
    again = render_sample(spec, plan_sample(spec, 1), renderer, dataset="t")
    assert renderer.datablock_counts() == counts and renderer._camera.animation_data is None
    assert first.files == again.files
    meta = json.loads(first.files["json"])
    assert [f["frame"] for f in meta["frames"]] == [0, 1, 2]
    classes = {o["id"]: o["cls"] for o in meta["scene"]["objects"]}
    for t, frame in enumerate(meta["frames"]):
        for ext in ("png", "seg.png", "depth.png", "flow.exr"):
            assert f"frame{t:03d}.{ext}" in first.files
        seg = np.asarray(Image.open(io.BytesIO(first.files[f"frame{t:03d}.seg.png"])))
        assert {int(i) for i in np.unique(seg)} - {0} == {o["id"] for o in frame["objects"]}
        assert all(classes[o["id"]] == o["class"] for o in frame["objects"])
    moving = [o["id"] for o in meta["scene"]["objects"] if any(o["velocity"])]
    assert moving  # the motion category moves things; their boxes move between frames
    boxes = [{o["id"]: o["bbox"] for o in f["objects"]} for f in meta["frames"]]
    assert any(boxes[0].get(i) != boxes[2].get(i) for i in moving)
    assert first.files["frame000.png"] == first.files["png"]


@pytest.mark.slow
def test_generate_and_validate_accept_a_sequence(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.yaml", wire(
        SMALL, samples=1, seed=5, version="1", shardSize=1, categories=[{"name": "motion", "weight": 1}],
        render={"resolutions": [{"width": 32, "height": 32}], "samples": {"min": 1, "max": 1},
                "denoise": False, "passes": ["rgb", "depth", "segmentation", "flow"], "frames": {"count": 2}},
        quality=OPEN_GATE, output=tmp_path / "out", image="renderer:test"), name="seq")
    cmd = [sys.executable, "-m", "parallel_synth.commands.cli"]
    res = subprocess.run([*cmd, "generate", str(manifest), "--out", str(tmp_path / "d"), "--workers", "1"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    root = tmp_path / "d" / "seq" / "v1"
    res = subprocess.run([*cmd, "validate", str(root)], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    import pyarrow.parquet as pq

    index = pq.read_table(root / "index" / "metadata.parquet", columns=["key", "num_frames"]).to_pylist()
    assert index == [{"key": planning.sample_key(0), "num_frames": 2}]
