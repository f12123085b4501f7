"""Calibrate and cost the quality gate on real renders (Blender, CPU).

Renders ``--samples`` samples of every category at the given resolution(s), prints the
distribution of each figure the gate measures (the calibration behind docs/quality.md), the
verdicts on corrupted copies of the same renders (pure RGB noise, added noise, black, white,
clipped, one-pixel objects, a noise mask, NaN), and the gate's cost per sample next to the
render time.

    .venv/bin/python benchmarks/bench_quality.py --samples 36 --size 64 --size 128
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "renderer-image")]

from synth_contract.api import SynthDatasetSpec  # noqa: E402
from synth_render import post, quality  # noqa: E402
from synth_render.sample import adaptive_spp, plan_sample, scene_for  # noqa: E402


def _spec(size: int, spp: int, denoise: bool) -> SynthDatasetSpec:
    return SynthDatasetSpec.model_validate({
        "samples": 10_000, "seed": 7, "shardSize": 100, "image": "bench",
        "render": {"resolutions": [{"width": size, "height": size}], "samples": {"min": spp, "max": spp * 4},
                   "denoise": denoise, "passes": ["rgb", "depth", "segmentation", "normals"]},
        "output": {"uri": "file:///tmp/unused"},
    })


def _pct(values: list[float]) -> str:
    if not values:
        return "-"
    q = np.percentile(values, [0, 5, 50, 95, 100])
    return " ".join(f"{v:7.4f}" for v in q)


def _corruptions(rgb: np.ndarray, seg: np.ndarray, out: Any, rng: np.random.Generator) -> dict[str, Any]:
    h, w = seg.shape
    one_px = np.zeros_like(seg)
    one_px[h // 2, w // 2] = 1
    noisy = np.clip(rgb.astype(np.float32) + rng.normal(0, 0.12 * 255, rgb.shape), 0, 255).astype(np.uint8)
    clipped = np.where(np.arange(w)[None, :, None] < int(w * 0.6), 255, rgb).astype(np.uint8)
    nan_rgb = out.rgb.copy()
    nan_rgb[0, 0, 0] = np.nan
    return {
        "pure RGB noise": (rng.integers(0, 256, rgb.shape, dtype=np.uint8), seg, out),
        "added noise s=0.12": (noisy, seg, out),
        "black": (np.zeros_like(rgb), seg, out),
        "white": (np.full_like(rgb, 255), seg, out),
        "60% clipped white": (clipped, seg, out),
        "one-pixel object": (rgb, one_px, out),
        "noise mask": (rgb, rng.integers(0, 3, seg.shape).astype(seg.dtype), out),
        "NaN in rgb": (rgb, seg, type("O", (), {"rgb": nan_rgb, "depth": out.depth, "normals": out.normals})()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=33, help="samples per configuration (all categories cycle)")
    p.add_argument("--size", type=int, action="append", help="square resolution (repeatable; default 64, 128)")
    p.add_argument("--spp", type=int, default=8, help="min samples per pixel (max is 4x)")
    p.add_argument("--no-denoise", action="store_true", help="render without the denoiser")
    args = p.parse_args()
    from synth_render.blender.renderer import BlenderRenderer

    renderer = BlenderRenderer(device="cpu")
    rng = np.random.default_rng(0)
    for size in args.size or [64, 128]:
        spec = _spec(size, args.spp, not args.no_denoise)
        th = quality.thresholds_for(spec.quality)
        figures: dict[str, list[float]] = {k: [] for k in ("noiseSigma", "mean", "clipped", "maskBoundary",
                                                           "minObjectPixels", "score")}
        render_s: list[float] = []
        gate_s: list[float] = []
        failures: list[str] = []
        bad: dict[str, list[bool]] = {}
        for index in range(args.samples):
            plan = plan_sample(spec, index)
            scene, config = scene_for(spec, plan)
            t0 = time.perf_counter()
            out = renderer.render(scene, width=size, height=size, spp=adaptive_spp(spec, scene.complexity),
                                  denoise=spec.render.denoise, seed=config.seed, normals=True)
            t1 = time.perf_counter()
            rgb = post.linear_to_srgb8(out.rgb)
            seg = post.encode_segmentation(out.index)
            ids = [o.id for o in scene.objects]
            report = quality.assess(out, rgb, seg, scene_ids=ids, thresholds=th)
            t2 = time.perf_counter()
            render_s.append(t1 - t0)
            gate_s.append(t2 - t1)
            counts = post.pixel_counts(seg)
            figures["noiseSigma"].append(report.noise_sigma)
            figures["mean"].append(report.mean)
            figures["clipped"].append(report.clipped)
            figures["maskBoundary"].append(quality.mask_boundary(seg))
            figures["minObjectPixels"].append(float(max(counts.values(), default=0)))
            figures["score"].append(report.score)
            if not report.ok or report.score < spec.quality.min_score:
                failures.append(f"  {plan.category:12s} #{index}: score {report.score:.3f} {list(report.reasons)}")
            for name, (r, s, o) in _corruptions(rgb, seg, out, rng).items():
                rep = quality.assess(o, r, s, scene_ids=ids, thresholds=th)
                bad.setdefault(name, []).append(rep.ok and rep.score >= spec.quality.min_score)
        print(f"\n== {size}x{size}, spp {args.spp}-{args.spp * 4}, denoise {spec.render.denoise}, "
              f"{args.samples} renders")
        print(f"{'figure':18s} {'min':>7s} {'p5':>7s} {'p50':>7s} {'p95':>7s} {'max':>7s}")
        for k, v in figures.items():
            label = "largestObjectPx" if k == "minObjectPixels" else k
            print(f"{label:18s} {_pct(v)}")
        print(f"clean renders failing the gate: {len(failures)}/{args.samples}")
        print("\n".join(failures))
        for name, passed in bad.items():
            print(f"corrupted '{name}': {sum(passed)}/{len(passed)} wrongly pass")
        mean_r, mean_g = statistics.mean(render_s), statistics.mean(gate_s)
        print(f"gate cost per sample: {mean_g * 1e3:.2f} ms; render {mean_r * 1e3:.1f} ms "
              f"({mean_g / mean_r:.1%} of render time)")


if __name__ == "__main__":
    main()
