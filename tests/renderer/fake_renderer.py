"""A fake renderer behind the ``Renderer`` protocol, so the worker and the gate are tested without Blender.

``clean_render`` draws shaded discs (one per object id) over a smooth gradient, with a depth
pass where the discs and the floor are, as a denoised render looks to the quality gate.
:class:`FakeRenderer` paints such a frame for each scene (deterministic in the render seed), or
pure RGB noise for render seeds listed in ``noisy_seeds``, so the worker's commit, checkpoints,
resume, gate, re-renders and quarantine run in milliseconds. ``seconds`` makes every render take
that long (a stand-in for Cycles, for the SIGTERM tests). ``fake_worker.py`` runs the container
entry point with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synth_render.rendering import Extras, FrameOutput, RenderOutput, ViewOutput


def clean_render(h: int = 64, w: int = 64, ids: tuple[int, ...] = (1, 2), *, seed: int = 0) -> RenderOutput:
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
    return RenderOutput(rgb=rgb.astype(np.float32), depth=depth, index=index, normals=normals, render_seconds=0.01,
                        spp=1)


@dataclass
class FakeRenderer:
    """Paints ``clean_render`` frames for each scene (and its extra views and frames); RGB noise for ``noisy_seeds``."""

    noisy_seeds: set[int] = field(default_factory=set)
    seconds: float = 0.0
    device: str = "paint"
    engine_version: str = "paint-1"
    calls: list[int] = field(default_factory=list)

    def render(self, scene: Any, *, width: int, height: int, spp: int, denoise: bool, seed: int,
               normals: bool = True, extras: Extras | None = None, views: tuple[Any, ...] = (),
               frames: tuple[Any, ...] = (), frame_motion_blur: bool = False) -> RenderOutput:
        self.calls.append(seed)
        if self.seconds:
            time.sleep(self.seconds)  # stands in for the render call
        ex = extras or Extras()
        ids = tuple(o.id for o in scene.objects)
        out = clean_render(height, width, ids, seed=seed % 1000)
        if seed in self.noisy_seeds:
            rng = np.random.default_rng(seed % 2**32)
            out = RenderOutput(rgb=rng.uniform(0, 1, out.rgb.shape).astype(np.float32), depth=out.depth,
                               index=out.index, normals=out.normals, render_seconds=out.render_seconds, spp=1)
        still = np.zeros((height, width), np.float32)
        extra = max(len(views), len(frames) - 1, 0)  # views: the cameras after view 0; frames: all, frame 0 first
        more = [clean_render(height, width, ids, seed=(seed + k) % 1000) for k in range(1, extra + 1)]
        return RenderOutput(
            rgb=out.rgb, depth=out.depth, index=out.index, normals=out.normals if normals else None,
            render_seconds=out.render_seconds, spp=spp, albedo=out.rgb if ex.albedo else None,
            roughness=still + 0.5 if ex.aovs else None, metallic=still if ex.aovs else None,
            flow=np.zeros((height, width, 2), np.float32) if ex.flow else None,
            amodal=tuple(np.where(np.isin(out.index, group), out.index, 0).astype(np.float32)
                         for group in ex.amodal_groups),
            views=tuple(ViewOutput(rgb=o.rgb, depth=o.depth, index=o.index, normals=o.normals, albedo=None,
                                   roughness=None, metallic=None, render_seconds=o.render_seconds)
                        for o in more[: len(views)]),
            frames=tuple(FrameOutput(rgb=o.rgb, depth=o.depth, index=o.index, normals=o.normals, albedo=None,
                                     roughness=None, metallic=None, render_seconds=o.render_seconds,
                                     flow=np.zeros((height, width, 2), np.float32) if ex.flow else None)
                         for o in more[: max(len(frames) - 1, 0)]))
