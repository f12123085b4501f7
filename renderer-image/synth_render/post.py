"""Post-processing of rendered arrays: camera matrices, colour encoding, boxes, pass encodings.

Pure numpy. The camera parameters come in as arguments (from the scene description), never
from live Blender state, so everything here is tested without Blender.

Conventions: pixel (u, v) has its origin at the top-left corner of the image, +u right, +v
down, pixel centres at half-integers. ``extrinsics`` is the 4x4 world-to-camera matrix in the
OpenCV convention (+x right, +y down, +z forward), so a world point X projects to
``K @ (E @ [X, 1])[:3]`` followed by division by its third coordinate.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render.scene import Camera

BACKGROUND_DEPTH = 1e9
"""Depths at or beyond this are sky/background (Cycles writes 1e10 where no surface was hit)."""


# --------------------------------------------------------------------------- camera


def camera_basis(cam: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right, up, forward) unit vectors of a look-at camera with roll, in world space."""
    loc = np.asarray(cam.location, dtype=np.float64)
    fwd = np.asarray(cam.look_at, dtype=np.float64) - loc
    fwd /= np.linalg.norm(fwd)
    world_up = np.array([0.0, 0.0, 1.0])
    if abs(float(fwd @ world_up)) > 0.999:
        world_up = np.array([0.0, 1.0, 0.0])
    right = np.cross(fwd, world_up)
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    if cam.roll:
        c, s = math.cos(cam.roll), math.sin(cam.roll)
        right, up = c * right + s * up, -s * right + c * up
    return right, up, fwd


def blender_matrix_world(cam: Camera) -> np.ndarray:
    """The camera object's 4x4 matrix_world (Blender cameras look down their local -Z, +Y up)."""
    right, up, fwd = camera_basis(cam)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, -fwd, cam.location
    return m


def extrinsics(cam: Camera) -> np.ndarray:
    """4x4 world-to-camera matrix, OpenCV convention (+x right, +y down, +z forward)."""
    right, up, fwd = camera_basis(cam)
    r = np.stack([right, -up, fwd])
    e = np.eye(4)
    e[:3, :3] = r
    e[:3, 3] = -r @ np.asarray(cam.location, dtype=np.float64)
    return e


def intrinsics(cam: Camera, width: int, height: int) -> np.ndarray:
    """3x3 pinhole intrinsics; the sensor width spans the image width (horizontal fit)."""
    f = cam.focal_mm / cam.sensor_mm * width
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def matrix_json(a: np.ndarray) -> list[list[float]]:
    """A camera matrix as the sample JSON stores it: nested lists rounded to 6 decimals (no -0.0)."""
    return [[round(float(x), 6) + 0.0 for x in row] for row in a]


def project(points: np.ndarray, k: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and camera-space depths (N,) of world points (N, 3)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    cam = (e[:3, :3] @ pts.T).T + e[:3, 3]
    uvw = (k @ cam.T).T
    return uvw[:, :2] / uvw[:, 2:3], cam[:, 2]


# --------------------------------------------------------------------------- colour and passes


def linear_to_srgb8(rgb: np.ndarray) -> np.ndarray:
    """Linear scene-referred RGB (H, W, 3) to 8-bit sRGB (Blender's 'Standard' view transform)."""
    x = np.clip(np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    s = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.asarray(np.round(s * 255.0), dtype=np.uint8)


def encode_depth(depth: np.ndarray) -> tuple[np.ndarray, float]:
    """Depth in metres (H, W) to uint16 and its scale: metres = value * scale; 0 = no surface."""
    finite = np.isfinite(depth) & (depth > 0) & (depth < BACKGROUND_DEPTH)
    far = float(depth[finite].max()) if finite.any() else 1.0
    scale = max(math.ceil(far / 65534 * 1e6) / 1e6, 1e-5)
    out = np.zeros(depth.shape, dtype=np.uint16)
    out[finite] = np.clip(np.round(depth[finite] / scale), 1, 65535).astype(np.uint16)
    return out, scale


def encode_normals(normals: np.ndarray, seg_or_depth_mask: np.ndarray) -> np.ndarray:
    """World-space unit normals (H, W, 3) to 8-bit RGB ``(n + 1) / 2``; background is black."""
    n = np.nan_to_num(normals, nan=0.0)
    out = np.asarray(np.round((np.clip(n, -1, 1) + 1) * 127.5), dtype=np.uint8)
    out[~seg_or_depth_mask] = 0
    return out


def encode_segmentation(index: np.ndarray) -> np.ndarray:
    """Object-index pass (float, H x W) to uint8 or uint16 ids: 0 is background."""
    ids = np.rint(np.nan_to_num(index, nan=0.0)).astype(np.int64)
    if ids.min(initial=0) < 0 or ids.max(initial=0) > 65535:
        raise ValueError(f"object ids out of range 0..65535: {ids.min()}..{ids.max()}")
    return ids.astype(np.uint8 if ids.max(initial=0) < 256 else np.uint16)


def bboxes_from_mask(seg: np.ndarray) -> dict[int, list[int]]:
    """Inclusive pixel boxes ``[x_min, y_min, x_max, y_max]`` of every non-zero id in a mask."""
    boxes: dict[int, list[int]] = {}
    for oid in np.unique(seg):
        if oid == 0:
            continue
        ys, xs = np.nonzero(seg == oid)
        boxes[int(oid)] = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
    return boxes


def pixel_counts(seg: np.ndarray) -> dict[int, int]:
    ids, counts = np.unique(seg, return_counts=True)
    return {int(i): int(n) for i, n in zip(ids, counts, strict=True) if i != 0}


# --------------------------------------------------------------------------- intrinsic passes


def normals_to_camera(normals: np.ndarray, e: np.ndarray) -> np.ndarray:
    """World-space normals (H, W, 3) to the OpenCV camera frame of world-to-camera ``e``
    (+x right, +y down, +z forward: a surface facing the camera has a negative z)."""
    return np.asarray(np.nan_to_num(normals, nan=0.0) @ np.asarray(e)[:3, :3].T, dtype=np.float32)


def encode_unit_gray(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A 0..1 map (roughness, metallic) to 8-bit grey ``round(v * 255)``; 0 outside ``mask``."""
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
    out = np.asarray(np.round(v * 255.0), dtype=np.uint8)
    out[~mask] = 0
    return out


def exr_bytes(channels: dict[str, np.ndarray]) -> bytes:
    """Float32 single-part scanline EXR (ZIP), deterministic bytes; channel name -> (H, W) array."""
    import os
    import tempfile

    import OpenEXR

    data = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in channels.items()}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    fd, path = tempfile.mkstemp(suffix=".exr")
    os.close(fd)
    try:
        OpenEXR.File(header, data).write(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def read_exr_bytes(data: bytes) -> dict[str, np.ndarray]:
    """Channels of an EXR given as bytes (the inverse of :func:`exr_bytes`)."""
    import os
    import tempfile

    import OpenEXR

    fd, path = tempfile.mkstemp(suffix=".exr")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        with OpenEXR.File(path, separate_channels=True) as exr:
            return {k: np.array(v.pixels) for k, v in exr.channels().items()}
    finally:
        os.unlink(path)
