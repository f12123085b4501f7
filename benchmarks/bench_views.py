"""Multi-view benchmark: what an N-view sample costs against N single-view samples, and bytes per view.

Prints its figures; it is not a test. Run it on an otherwise idle machine when possible (wall time):

    python benchmarks/bench_views.py                         # 8 views, 128x128, 16 spp, 4 samples
    python benchmarks/bench_views.py --views 8 --size 256 --spp 32 --samples 3 --category composition

Figures (one warm renderer, as a worker keeps it; the same sample indexes in both runs):
- ``ratio``: wall time of an N-view sample / (N x wall time of the single-view sample at the same
  settings), target <= 0.9 (the scene is generated, built and synced once for all views);
  ``cpuRatio``: the same with the process's CPU time (steadier on a shared machine);
- ``extraViewShare``: CPU time of one more view relative to a single-view sample (what
  ``synth_contract.multiview.EXTRA_VIEW_GPU_SHARE`` models for ``synthctl plan``);
- bytes per view (all of a view's members) and per sample, single-view vs N-view (view 0's
  members are also the sample's top-level files).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from synth_contract.api import SynthDatasetSpec
from synth_render.blender.renderer import BlenderRenderer
from synth_render.sample import plan_sample, render_sample


def _spec(args: argparse.Namespace, views: int) -> SynthDatasetSpec:
    render: dict[str, Any] = {
        "device": "cpu", "resolutions": [{"width": args.size, "height": args.size}],
        "samples": {"min": args.spp, "max": args.spp}, "denoise": False,
        "passes": ["rgb", "depth", "segmentation", "normals"],
        "views": {"count": views, "pattern": args.pattern},
    }
    return SynthDatasetSpec.model_validate({
        "samples": 1000, "seed": 3, "shardSize": 1000, "render": render,
        "categories": [{"name": args.category, "weight": 1}],
        "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0},
        "output": {"uri": "file:///tmp/unused"}, "image": "bench",
    })


def _run(r: BlenderRenderer, spec: SynthDatasetSpec, indexes: list[int]) -> tuple[float, float, list[int]]:
    """(wall seconds, CPU seconds of all the process's threads, bytes per sample) over the samples."""
    sizes = []
    w0, c0 = time.perf_counter(), time.process_time()
    for i in indexes:
        s = render_sample(spec, plan_sample(spec, i), r, dataset="bench")
        sizes.append(sum(len(v) for v in s.files.values()))
    return time.perf_counter() - w0, time.process_time() - c0, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--pattern", default="orbit", choices=["orbit", "arc", "stereo", "random"])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--spp", type=int, default=16)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--category", default="composition")
    args = ap.parse_args()
    r = BlenderRenderer(device="cpu")
    one, many = _spec(args, 1), _spec(args, args.views)
    indexes = list(range(1, args.samples + 1))
    _run(r, one, [0])  # warm-up: meshes, HDRI, kernels
    _run(r, many, [0])
    # Interleaved, sample by sample, so that load from other processes hits both runs alike.
    s1 = c1 = sn = cn = 0.0
    b1: list[int] = []
    bn: list[int] = []
    for i in indexes:
        w, c, b = _run(r, one, [i])
        s1, c1, b1 = s1 + w, c1 + c, b1 + b
        w, c, b = _run(r, many, [i])
        sn, cn, bn = sn + w, cn + c, bn + b
    n = args.views
    ratio = sn / (n * s1)
    extra = (cn / c1 - 1) / (n - 1) if n > 1 else 0.0
    # Bytes of one view = its view{k:02d}.* members; the N-view sample also holds view 0's top-level copies.
    s = render_sample(many, plan_sample(many, indexes[0]), r, dataset="bench")
    view_bytes = [sum(len(v) for k, v in s.files.items() if k.startswith(f"view{k2:02d}.")) for k2 in range(n)]
    per_view = statistics.mean(view_bytes)
    print(json.dumps({
        "views": n, "pattern": args.pattern, "size": args.size, "spp": args.spp, "category": args.category,
        "samples": len(indexes),
        "singleViewSecondsPerSample": round(s1 / len(indexes), 3),
        "multiViewSecondsPerSample": round(sn / len(indexes), 3),
        "ratio": round(ratio, 3), "target": "<= 0.9",
        "cpuRatio": round(cn / (n * c1), 3),
        "extraViewShare": round(extra, 3),
        "bytesPerView": round(per_view),
        "bytesPerSampleSingleView": round(statistics.mean(b1)),
        "bytesPerSampleMultiView": round(statistics.mean(bn)),
    }, indent=1))


if __name__ == "__main__":
    main()
