"""Labels of smoke and fire: volumes write no object index, so their pixels are found by optical depth.

The drawn volume is the set of grid cells within a particle radius of a particle
(:func:`occupancy`); a pixel is labelled where the optical depth through that volume in front of
the pixel's first surface reaches :data:`OPTICAL_DEPTH_LABEL` (:func:`volume_mask`). Pure numpy.
"""

from __future__ import annotations

import math

import numpy as np

from synth_render import groundtruth

OPTICAL_DEPTH_LABEL = 0.5
"""A pixel is labelled smoke/fire where the volume's optical depth in front of the surface reaches this."""


def occupancy(points: np.ndarray, radius: float, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """(grid of 0/1 floats, its world origin): cells within ``radius`` of a particle (the drawn volume)."""
    lo = points.min(axis=0) - radius - cell
    hi = points.max(axis=0) + radius + cell
    shape = np.maximum(np.ceil((hi - lo) / cell).astype(int), 1)
    occ = np.zeros(tuple(int(s) for s in shape), dtype=np.float32)
    k = math.ceil(radius / cell)
    rng_ = np.arange(-k, k + 1)
    offs = np.stack(np.meshgrid(rng_, rng_, rng_, indexing="ij"), axis=-1).reshape(-1, 3)
    offs = offs[np.linalg.norm(offs, axis=1) * cell <= radius + 0.5 * cell]
    base = np.floor((points - lo) / cell).astype(np.int64)
    for o in offs:
        c = np.clip(base + o, 0, shape - 1)
        occ[c[:, 0], c[:, 1], c[:, 2]] = 1.0
    return occ, lo


def optical_depth(occ: np.ndarray, lo: np.ndarray, cell: float, density: float, k: np.ndarray, e: np.ndarray,
                  depth: np.ndarray, samples: int = 48) -> np.ndarray:
    """(H, W) optical depth of a uniform-density volume in front of each pixel's first surface.

    ``k``/``e``: OpenCV intrinsics and world-to-camera extrinsics; ``depth``: planar depth of the
    render (>= 1e9 where nothing was hit).
    """
    h, w = depth.shape
    hi = lo + np.asarray(occ.shape) * cell
    corners = groundtruth.aabb_corners(lo, hi)
    zc = corners @ e[:3, :3].T + e[:3, 3]
    z0, z1 = max(float(zc[:, 2].min()), 1e-3), float(zc[:, 2].max())
    tau = np.zeros((h, w), dtype=np.float64)
    if z1 <= z0:
        return tau
    vv, uu = np.mgrid[0:h, 0:w]
    dirs = np.stack([(uu + 0.5 - k[0, 2]) / k[0, 0], (vv + 0.5 - k[1, 2]) / k[1, 1], np.ones((h, w))], axis=-1)
    step_len = np.linalg.norm(dirs, axis=-1)
    rot_t = e[:3, :3].T
    dz = (z1 - z0) / samples
    for s in range(samples):
        z = z0 + (s + 0.5) * dz
        cam = dirs * z - e[:3, 3]
        world = cam @ rot_t.T
        idx = np.floor((world - lo) / cell).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.asarray(occ.shape)), axis=-1) & (z < depth)
        idx = np.where(ok[..., None], idx, 0)
        tau += np.where(ok, occ[idx[..., 0], idx[..., 1], idx[..., 2]], 0.0) * step_len * dz * density
    return tau


def volume_mask(points: np.ndarray, radius: float, density: float, k: np.ndarray, e: np.ndarray,
                depth: np.ndarray) -> np.ndarray:
    """Pixels whose optical depth through the particle volume reaches :data:`OPTICAL_DEPTH_LABEL`."""
    if len(points) == 0:
        return np.zeros(depth.shape, dtype=bool)
    cell = radius / 2
    occ, lo = occupancy(points, radius, cell)
    return optical_depth(occ, lo, cell, density, k, e, depth) >= OPTICAL_DEPTH_LABEL
