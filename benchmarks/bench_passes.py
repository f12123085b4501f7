"""What the ground-truth extras of issue #14 cost per sample: render time and stored bytes.

Renders the same samples twice in one Blender scene: with the base passes (rgb, depth,
segmentation) and with every extra pass on (normals, albedo, roughness, metallic, flow,
semantic, EXR depth, saveScene glb). The 3D fields and the caption are always computed; their
cost is the amodal 1-spp renders (``RenderOutput.aux_seconds``). Prints seconds per sample (main render,
aux renders, total) and the mean bytes of every tar member.

    .venv/bin/python benchmarks/bench_passes.py                  # default preset (512x512, 16-64 spp)
    .venv/bin/python benchmarks/bench_passes.py --size 128 --samples 6
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

from synth_contract.api import SynthDatasetSpec
from synth_render.blender.renderer import BlenderRenderer
from synth_render.sample import plan_sample, render_sample

EXTRA = ["rgb", "depth", "segmentation", "normals", "albedo", "roughness", "metallic", "flow", "semantic"]


def _spec(size: int | None, passes: list[str], extras: bool) -> SynthDatasetSpec:
    render: dict[str, object] = {"passes": passes, "device": "cpu"}
    if size:
        render["resolutions"] = [{"width": size, "height": size}]
    if extras:
        render["depthFormat"] = "exr"
    return SynthDatasetSpec.model_validate({
        "samples": 1000, "image": "x", "render": render, "quality": {"maxRerenders": 0, "minPassRate": 0},
        "output": {"uri": "file:///tmp/unused", **({"saveScene": "glb"} if extras else {})}})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=None, help="Square resolution (default: the spec default).")
    ap.add_argument("--samples", type=int, default=4)
    args = ap.parse_args()
    blender = BlenderRenderer(device="cpu")
    aux: list[float] = []

    class _Timed:
        device, engine_version = blender.device, blender.engine_version

        def render(self, *a: Any, **kw: Any) -> Any:
            out = blender.render(*a, **kw)
            aux.append(out.aux_seconds)
            return out

    renderer = _Timed()
    results = {}
    for label, passes, extras in (("base", ["rgb", "depth", "segmentation"], False), ("all extras", EXTRA, True)):
        spec = _spec(args.size, passes, extras)
        main_s = aux_s = total_s = 0.0
        sizes: dict[str, int] = defaultdict(int)
        for i in range(args.samples):
            t0 = time.perf_counter()
            s = render_sample(spec, plan_sample(spec, i), renderer, dataset="bench")
            total_s += time.perf_counter() - t0
            main_s += s.render_seconds
            aux_s += aux.pop() if aux else 0.0
            for ext, data in s.files.items():
                sizes[ext] += len(data)
        n = args.samples
        w, h = s.meta["render"]["width"], s.meta["render"]["height"]
        results[label] = total_s / n
        print(f"{label:10s} {w}x{h}: {total_s / n:6.2f} s/sample (main render {main_s / n:.2f} s, "
              f"aux renders + scene export {aux_s / n:.2f} s), {sum(sizes.values()) / n / 1e3:,.1f} kB/sample")
        for ext, b in sorted(sizes.items(), key=lambda kv: -kv[1]):
            print(f"    {ext:14s} {b / n / 1e3:9.1f} kB")
    print(f"extras cost: {results['all extras'] / results['base'] - 1:+.0%} time per sample")


if __name__ == "__main__":
    main()
