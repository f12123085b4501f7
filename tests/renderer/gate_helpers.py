"""Images for the quality gate tests: a clean synthetic render, and a renderer that paints them.

``clean_render`` draws shaded discs (one per object id) over a smooth gradient, with a depth
pass where the discs and the floor are, as a denoised render looks to the gate. ``PaintRenderer``
is a stand-in for the Blender driver that paints such a frame for each scene, or pure RGB noise
for render seeds listed in ``noisy_seeds``, so the worker's gate, re-renders and quarantine are
tested in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Out:
    rgb: np.ndarray
    depth: np.ndarray
    index: np.ndarray
    normals: np.ndarray | None
    render_seconds: float = 0.01


def clean_render(h: int = 64, w: int = 64, ids: tuple[int, ...] = (1, 2), *, seed: int = 0) -> Out:
    """A smooth, well exposed linear frame with one shaded disc per id (float32 passes)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.08 + 0.12 * (y / h)
    rgb = np.stack([base, base * 1.05, base * 1.1], axis=-1)
    index = np.zeros((h, w), np.float32)
    depth = np.full((h, w), 8.0, np.float32)
    grid = 2 if len(ids) <= 2 else 3
    for k, oid in enumerate(ids[: grid * grid]):
        cx, cy = w * (k % grid + 0.5) / grid, h * (k // grid % grid + 0.5) / grid
        r = min(h, w) * (0.16 if grid == 2 else 0.12)
        d2 = (x - cx) ** 2 + (y - cy) ** 2
        disc = d2 <= r * r
        shade = np.clip(1.0 - d2 / (r * r) * 0.6, 0, 1)
        color = rng.uniform(0.15, 0.7, 3).astype(np.float32)
        rgb[disc] = shade[disc, None] * color
        index[disc] = oid
        depth[disc] = 3.0 + k
    normals = np.zeros((h, w, 3), np.float32)
    normals[..., 2] = 1.0
    return Out(rgb=rgb.astype(np.float32), depth=depth, index=index, normals=normals)


@dataclass
class PaintRenderer:
    """Renders ``clean_render`` frames for each scene; pure RGB noise for ``noisy_seeds``."""

    noisy_seeds: set[int] = field(default_factory=set)
    device: str = "paint"
    engine_version: str = "paint-1"
    calls: list[int] = field(default_factory=list)

    def render(self, scene: Any, *, width: int, height: int, spp: int, denoise: bool, seed: int,
               normals: bool = True, **extras: Any) -> Out:
        self.calls.append(seed)
        out = clean_render(height, width, tuple(o.id for o in scene.objects), seed=seed % 1000)
        if seed in self.noisy_seeds:
            rng = np.random.default_rng(seed % 2**32)
            return Out(rgb=rng.uniform(0, 1, out.rgb.shape).astype(np.float32), depth=out.depth,
                       index=out.index, normals=out.normals)
        return out
