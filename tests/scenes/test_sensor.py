"""The camera sensor model: parameters round-trip, labels follow the distorted image, the gate knows the noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synth_contract.api import SensorSpec
from synth_render import post, quality, sensor
from synth_render.rendering import RenderOutput
from synth_render.scene import Camera

W, H = 320, 240
SQUARE = 0.25
"""Checker square edge (metres); the board lies in the plane z = 0, centred on the origin."""
INNER = (7, 5)
"""Inner corners (columns, rows) the detector looks for."""


def _board(cam: Camera, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(on the board, white square, ray parameter, camera z of the ray) at pixel positions (u, v)."""
    k, e = post.intrinsics(cam, W, H), post.extrinsics(cam)
    rays_cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
    rays = rays_cam @ e[:3, :3]  # camera -> world directions (R^T d)
    origin = np.asarray(cam.location, dtype=np.float64)
    t = -origin[2] / rays[..., 2]
    hit = origin + rays * t[..., None]
    cx, cy = np.floor(hit[..., 0] / SQUARE + 4), np.floor(hit[..., 1] / SQUARE + 3)
    on = (cx >= 0) & (cx < 8) & (cy >= 0) & (cy < 6) & (t > 0)
    return on, ((cx + cy) % 2 == 0) & on, t, rays_cam[..., 2]


def _checker_render(cam: Camera) -> tuple[RenderOutput, np.ndarray]:
    """An ideal pinhole render of an 8x6 checkerboard (ray-plane intersection, 4x4 supersampled), ids 1/2
    for white/black squares, and the board's inner corners (world)."""
    n = 4
    u, v = np.meshgrid((np.arange(W * n) + 0.5) / n, (np.arange(H * n) + 0.5) / n)
    on, white, _, _ = _board(cam, u, v)
    value = np.where(white, 0.8, np.where(on, 0.03, 0.4))
    rgb = (value.reshape(H, n, W, n).mean(axis=(1, 3))[..., None] * np.ones(3)).astype(np.float32)
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    on, white, t, z = _board(cam, u, v)
    index = np.where(on, np.where(white, 1.0, 2.0), 0.0).astype(np.float32)
    depth = np.where(on, t * z, 1e10).astype(np.float32)
    corners = np.array([[(i - 3) * SQUARE, (j - 2) * SQUARE, 0.0] for j in range(INNER[1]) for i in range(INNER[0])])
    return RenderOutput(rgb=rgb, depth=depth, index=index, normals=None, render_seconds=0.0, spp=1), corners


def _params(**over: float) -> sensor.SensorParams:
    base = {"seed": 5, "exposure": 0.0, "wb_red": 1.0, "wb_blue": 1.0, "k1": -0.18, "k2": 0.03, "p1": 0.002,
            "p2": -0.0015, "vignetting": 0.0, "shot": 0.0, "read": 0.0, "ca": 0.0, "jpeg_quality": 0}
    base.update(over)
    return sensor.SensorParams(**base)  # type: ignore[arg-type]


CAM = Camera(location=(0.35, -1.6, 2.3), look_at=(0.0, 0.0, 0.0), focal_mm=30.0)


@pytest.mark.parametrize("k1", [-0.18, 0.12])
def test_detected_checkerboard_corners_land_where_the_recorded_camera_projects_them(k1: float) -> None:
    out, corners = _checker_render(CAM)
    k = post.intrinsics(CAM, W, H)
    sensed = sensor.apply(_params(k1=k1), out, k)
    gray = cv2.cvtColor(sensed.rgb8, cv2.COLOR_RGB2GRAY)
    found, det = cv2.findChessboardCorners(gray, INNER)
    assert found
    det = cv2.cornerSubPix(gray, det, (5, 5), (-1, -1), (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3))
    det = det.reshape(-1, 2) + 0.5  # OpenCV pixel centres are integers; ours are half-integers
    cam_pts = (post.extrinsics(CAM)[:3, :3] @ corners.T).T + post.extrinsics(CAM)[:3, 3]
    proj = sensor.project(cam_pts, sensed.intrinsics, _params(k1=k1).dist)
    # The detector may order the grid from either end: match each projected corner to its nearest detection.
    err = np.linalg.norm(proj[:, None, :] - det[None, :, :], axis=2).min(axis=1)
    assert float(err.mean()) < 0.2 and float(err.max()) < 0.5, f"corner error {err.mean():.2f} px, max {err.max():.2f}"
    ideal = (k @ cam_pts.T).T
    ideal = ideal[:, :2] / ideal[:, 2:]
    assert float(np.linalg.norm(ideal - proj, axis=1).max()) > 4 * float(err.max()), "the distortion moves corners"


def test_masks_and_depth_are_warped_with_the_image() -> None:
    out, _ = _checker_render(CAM)
    sensed = sensor.apply(_params(), out, post.intrinsics(CAM, W, H))
    seg = sensed.out.index.astype(np.int64)
    assert set(np.unique(seg)) <= {0, 1, 2}, "nearest-neighbour warping keeps ids ids"
    bright = sensed.rgb8.mean(axis=2)
    interior = cv2.erode((seg == 1).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    dark = cv2.erode((seg == 2).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert (bright[interior] > 150).mean() > 0.99 and (bright[dark] < 80).mean() > 0.99
    board = seg > 0
    assert np.all(sensed.out.depth[board] < 1e9) and np.all(sensed.out.depth[~board] > 1e9)


def test_parameters_round_trip_through_the_sample_json() -> None:
    spec = SensorSpec(enabled=True)
    p = sensor.draw(spec, 1234)
    out, _ = _checker_render(CAM)
    sensed = sensor.apply(p, out, post.intrinsics(CAM, W, H))
    back = sensor.params_from_record(sensed.record)
    assert back == p
    again = sensor.apply(back, out, post.intrinsics(CAM, W, H))
    assert np.array_equal(again.rgb8, sensed.rgb8)
    meta = {"camera": {"intrinsics": []}}
    sensor.annotate(meta, sensed, spec)
    assert meta["sensor"]["distortion"] == {"k1": p.k1, "k2": p.k2, "p1": p.p1, "p2": p.p2}
    assert meta["camera"]["distortion"]["k1"] == p.k1
    assert meta["camera"]["intrinsics"] == post.matrix_json(sensed.intrinsics)
    assert sensor.draw(spec, 1234) == p and sensor.draw(spec, 1235) != p


def test_draws_stay_in_the_spec_ranges() -> None:
    spec = SensorSpec(enabled=True)
    for seed in range(40):
        p = sensor.draw(spec, seed)
        assert abs(p.k1) <= spec.distortion.k1 and abs(p.exposure) <= spec.exposure
        assert spec.jpeg_quality.min <= p.jpeg_quality <= spec.jpeg_quality.max
        assert 0 <= p.read <= spec.noise.read and 0 <= p.vignetting <= spec.vignetting


def test_sensor_off_is_the_plain_encoding() -> None:
    out, _ = _checker_render(CAM)
    same, rgb8, sensed = sensor.process(SensorSpec(), out, post.intrinsics(CAM, W, H), seed=1, single_view=True)
    assert sensed is None and same is out and np.array_equal(rgb8, post.linear_to_srgb8(out.rgb))


def _smooth_scene(size: int = 128) -> RenderOutput:
    y, x = np.mgrid[:size, :size] / size
    rgb = np.stack([0.2 + 0.3 * x, 0.25 + 0.2 * y, 0.3 + 0.1 * x * y], -1).astype(np.float32)
    index = np.zeros((size, size), np.float32)
    index[32:96, 40:100] = 1
    return RenderOutput(rgb=rgb, depth=np.full((size, size), 2.0, np.float32), index=index, normals=None,
                        render_seconds=0.0, spp=1)


def test_the_gate_passes_intended_sensor_noise_and_still_fails_a_broken_render() -> None:
    out = _smooth_scene()
    cam = Camera(location=(0, -3, 1), look_at=(0, 0, 0))
    loud = _params(shot=0.05, read=0.05, k1=0.0, k2=0.0, p1=0.0, p2=0.0)
    sensed = sensor.apply(loud, out, post.intrinsics(cam, 128, 128))
    seg = sensed.out.index.astype(np.uint8)
    intended = sensed.record["expectedNoiseSigma"]
    blind = quality.assess(sensed.out, sensed.rgb8, seg, scene_ids=[1])
    aware = quality.assess(sensed.out, sensed.rgb8, seg, scene_ids=[1], intended_noise_sigma=intended)
    assert any(r.startswith("noise") for r in blind.reasons), "this much noise fails a gate that is not told"
    assert not any(r.startswith("noise") for r in aware.reasons)
    assert abs(intended - blind.noise_sigma) < 0.25 * blind.noise_sigma, "the intended noise is what the gate reads"
    broken = np.random.default_rng(0).integers(0, 256, size=sensed.rgb8.shape, dtype=np.uint8)
    report = quality.assess(sensed.out, broken, seg, scene_ids=[1], intended_noise_sigma=intended)
    assert any(r.startswith("noise") for r in report.reasons)
