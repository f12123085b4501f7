"""Sequence benchmark: time per frame against a still, and the flow pass's end-point error.

Prints its figures; it is not a test. Run it on an otherwise idle machine when possible (wall time):

    python benchmarks/bench_frames.py                    # 8 frames, 128x128, 16 spp, 3 samples
    python benchmarks/bench_frames.py --frames 16 --size 256 --spp 32

Figures (one warm renderer, as a worker keeps it):
- ``frameOverStill``: wall time of a T-frame ``motion`` sample / T / wall time of the same sample as a
  still (the scene is generated, built and synced once; each frame is a re-keyed render);
- ``flowEpe``: mean end-point error (pixels) of the ``flow`` pass against the motion computed from the
  geometry (depth unprojected, moved by the known velocity, reprojected), on a synthetic scene: a
  cube translating at a known velocity in front of a static background, the camera orbiting;
  target < 0.5 px. Reported for the moving object and the static background (silhouettes excluded)
  and over all pixels with a surface (silhouettes included).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from synth_contract.api import SynthDatasetSpec
from synth_render import frames as fr
from synth_render import post
from synth_render.blender.renderer import BlenderRenderer
from synth_render.rendering import Extras
from synth_render.sample import plan_sample, render_sample
from synth_render.scene import Camera, Light, Material, Part, Scene, SceneObject


def _spec(args: argparse.Namespace, frames: int) -> SynthDatasetSpec:
    return SynthDatasetSpec.model_validate({
        "samples": 1000, "seed": 3, "shardSize": 1000, "image": "bench", "output": {"uri": "file:///tmp/unused"},
        "categories": [{"name": "motion", "weight": 1}],
        "render": {"device": "cpu", "resolutions": [{"width": args.size, "height": args.size}],
                   "samples": {"min": args.spp, "max": args.spp}, "denoise": False,
                   "passes": ["rgb", "depth", "segmentation", "flow"], "frames": {"count": frames}},
        "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0},
    })


def _timed(r: BlenderRenderer, spec: SynthDatasetSpec, indexes: list[int]) -> float:
    t0 = time.perf_counter()
    for i in indexes:
        render_sample(spec, plan_sample(spec, i), r, dataset="bench")
    return time.perf_counter() - t0


def _translation_scene(cam: Camera, velocity: tuple[float, float, float]) -> Scene:
    box = SceneObject(id=3, cls="cube", parts=(Part("cube", Material(color=(0.9, 0.2, 0.2), pattern="checker")),),
                      location=(0.0, 0.0, 1.0), velocity=velocity)
    ground = Part("plane", Material(color=(0.6, 0.6, 0.6), pattern="checker"), scale=(30.0, 30.0, 1.0))
    wall = Part("cube", Material(color=(0.3, 0.6, 0.3), pattern="checker"), location=(0.0, 5.0, 3.0),
                scale=(30.0, 0.2, 6.0))
    return Scene(category="motion", objects=(box,), lights=(Light("sun", (0.0, 0.0, 5.0), energy=4.0),),
                 camera=cam, background=(ground, wall))


def _expected(depth: np.ndarray, cam: Camera, nxt: Camera, shift: np.ndarray, size: int) -> np.ndarray:
    k = post.intrinsics(cam, size, size)
    v, u = np.mgrid[0:size, 0:size] + 0.5
    pts = (np.linalg.inv(k) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])) * depth.ravel()
    world = (np.linalg.inv(post.extrinsics(cam)) @ np.vstack([pts, np.ones(u.size)]))[:3].T + shift
    uv, _ = post.project(world, post.intrinsics(nxt, size, size), post.extrinsics(nxt))
    return (uv - np.stack([u.ravel(), v.ravel()], axis=1)).reshape(size, size, 2)


def flow_epe(r: BlenderRenderer, size: int, frames: int) -> dict[str, Any]:
    velocity = np.array([0.08, 0.0, 0.03])
    cam = Camera(location=(0.0, -6.0, 1.5), look_at=(0.0, 0.0, 1.0), focal_mm=35.0)
    params = fr.FrameParams(count=frames, camera_degrees_per_frame=1.0)
    cams = fr.frame_cameras(cam, params)
    out = r.render(_translation_scene(cam, tuple(velocity)), width=size, height=size, spp=1,  # type: ignore[arg-type]
                   denoise=False, seed=1, normals=False, extras=Extras(flow=True), frames=cams)
    errs: dict[str, list[float]] = {"object": [], "background": [], "allPixels": []}
    for t, (flow, depth, index) in enumerate([(out.flow, out.depth, out.index)]
                                             + [(f.flow, f.depth, f.index) for f in out.frames]):
        seg = post.encode_segmentation(index)
        nxt = fr.frame_camera(cam, params, t + 1)
        for name, mask, shift in (("object", seg == 3, velocity), ("background", (seg == 0) & (depth < 50),
                                                                    np.zeros(3))):
            inner = mask & ~np.pad(~mask, 1, constant_values=True)[2:, 1:-1]
            e = np.linalg.norm(flow - _expected(depth, cams[t], nxt, shift, size), axis=-1)[inner]
            errs[name] += e.tolist()
        moving = (seg == 3)[..., None]
        full = np.where(moving, _expected(depth, cams[t], nxt, velocity, size), _expected(depth, cams[t], nxt,
                                                                                         np.zeros(3), size))
        errs["allPixels"] += np.linalg.norm(flow - full, axis=-1)[depth < 50].tolist()
    return {f"flowEpe{k[0].upper() + k[1:]}": round(float(np.mean(v)), 4) for k, v in errs.items()} | {
        "flowEpeTarget": "< 0.5 px", "flowPixelsMean": round(float(np.linalg.norm(out.flow, axis=-1).mean()), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--spp", type=int, default=16)
    ap.add_argument("--samples", type=int, default=3)
    args = ap.parse_args()
    r = BlenderRenderer(device="cpu")
    still, seq = _spec(args, 1), _spec(args, args.frames)
    _timed(r, still, [0])
    _timed(r, seq, [0])
    indexes = list(range(1, args.samples + 1))
    t_still = t_seq = 0.0
    for i in indexes:  # interleaved, so that load from other processes hits both runs alike
        t_still += _timed(r, still, [i])
        t_seq += _timed(r, seq, [i])
    print(json.dumps({
        "frames": args.frames, "size": args.size, "spp": args.spp, "samples": len(indexes),
        "stillSecondsPerSample": round(t_still / len(indexes), 3),
        "sequenceSecondsPerSample": round(t_seq / len(indexes), 3),
        "frameOverStill": round(t_seq / args.frames / t_still, 3),
        **flow_epe(r, args.size, 4),
    }, indent=1))


if __name__ == "__main__":
    main()
