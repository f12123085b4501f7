"""Pure post-processing: camera matrices, boxes from masks, pass encodings (the gate: test_renderer_quality)."""

from __future__ import annotations

import numpy as np
import pytest

from synth_render import post
from synth_render.scene import Camera


def test_look_at_point_projects_to_the_image_centre() -> None:
    cam = Camera(location=(4.0, -3.0, 2.0), look_at=(0.5, 0.5, 0.3), focal_mm=35.0)
    uv, z = post.project(np.array([cam.look_at]), post.intrinsics(cam, 200, 100), post.extrinsics(cam))
    np.testing.assert_allclose(uv[0], [100.0, 50.0], atol=1e-9)
    assert z[0] == pytest.approx(np.linalg.norm(np.subtract(cam.look_at, cam.location)))


def test_camera_axes_follow_the_opencv_convention() -> None:
    cam = Camera(location=(0.0, -10.0, 0.0), look_at=(0.0, 0.0, 0.0), focal_mm=50.0, sensor_mm=36.0)
    k, e = post.intrinsics(cam, 100, 100), post.extrinsics(cam)
    uv, _ = post.project(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), k, e)
    f = 50 / 36 * 100
    np.testing.assert_allclose(uv[0], [50 + f / 10, 50], atol=1e-9)  # world +x appears right
    np.testing.assert_allclose(uv[1], [50, 50 - f / 10], atol=1e-9)  # world +z appears up
    np.testing.assert_allclose(e[:3, :3] @ e[:3, :3].T, np.eye(3), atol=1e-12)


def test_roll_rotates_the_image() -> None:
    cam = Camera(location=(0.0, -10.0, 0.0), look_at=(0.0, 0.0, 0.0), roll=np.pi / 2)
    uv, _ = post.project(np.array([[1.0, 0.0, 0.0]]), post.intrinsics(cam, 100, 100), post.extrinsics(cam))
    assert abs(uv[0][0] - 50) < 1e-9 and uv[0][1] != 50


def test_blender_matrix_inverts_extrinsics_up_to_axis_flip() -> None:
    cam = Camera(location=(1.0, 2.0, 3.0), look_at=(0.0, 0.0, 0.0), roll=0.3)
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    np.testing.assert_allclose(flip @ np.linalg.inv(post.blender_matrix_world(cam)), post.extrinsics(cam),
                               atol=1e-12)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (np.zeros((4, 5), np.uint8), {}),
        (np.pad(np.ones((2, 3), np.uint8) * 7, ((1, 1), (1, 1))), {7: [1, 1, 3, 2]}),
        (np.array([[1, 0, 0], [0, 0, 2], [1, 0, 2]], np.uint16), {1: [0, 0, 0, 2], 2: [2, 1, 2, 2]}),
        (np.full((3, 3), 300, np.uint16), {300: [0, 0, 2, 2]}),
    ],
)
def test_bboxes_from_mask(mask: np.ndarray, expected: dict[int, list[int]]) -> None:
    assert post.bboxes_from_mask(mask) == expected


def test_depth_roundtrip_within_one_step() -> None:
    depth = np.array([[0.5, 3.25], [1e10, 80.0]], np.float32)
    enc, scale = post.encode_depth(depth)
    assert enc.dtype == np.uint16 and enc[1, 0] == 0
    np.testing.assert_allclose(enc[[0, 0, 1], [0, 1, 1]] * scale, [0.5, 3.25, 80.0], atol=scale)


def test_segmentation_dtype_grows_with_ids() -> None:
    assert post.encode_segmentation(np.array([[0.0, 3.0]])).dtype == np.uint8
    assert post.encode_segmentation(np.array([[0.0, 300.0]])).dtype == np.uint16
    with pytest.raises(ValueError):
        post.encode_segmentation(np.array([[70000.0]]))


def test_srgb_encoding_matches_the_standard_curve() -> None:
    out = post.linear_to_srgb8(np.array([[[0.0, 0.18, 1.0]]], np.float32))
    assert out.tolist() == [[[0, 118, 255]]]
    assert post.linear_to_srgb8(np.array([[[np.nan, 5.0, -1.0]]])).tolist() == [[[0, 255, 0]]]
