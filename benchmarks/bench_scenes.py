"""Scene-realism benchmark (issue #28): cost of physics settling and of the camera sensor, per sample.

Prints its figures; it is not a test. Wall time, so other load on the cores shows up in them.

    python benchmarks/bench_scenes.py                       # 20 scenes per physics category, 2 renders
    python benchmarks/bench_scenes.py --scenes 50 --render-samples 0   # no Blender: settling and sensor only

Figures:
- settling (``physics.settle``) and framing per sample, ms (median and 90th percentile), per
  physics category, with the mean number of steps run;
- the sensor model (``sensor.apply``) on a 512x512 render with depth, ids and normals, ms
  (median over 30 runs; wall time and the process's CPU time, which other load on the cores
  does not inflate), target < 20 ms;
- with ``--render-samples N``: N physics-category samples rendered at the default preset
  (512x512, 16-64 spp, denoised, CPU); the settling share of the render time, target < 15 %.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from synth_contract.api import SensorSpec, SynthDatasetSpec
from synth_render import physics, post, sensor
from synth_render.generators import GENERATORS, GenConfig
from synth_render.generators.framing import FILL, frame
from synth_render.generators.staging import PHYSICS_DEFAULT
from synth_render.rendering import RenderOutput
from synth_render.sampling import r_sequence
from synth_render.scene import Camera


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def bench_settling(scenes: int) -> float:
    """Prints per-category settling cost; returns the median settle time over all scenes (ms)."""
    every: list[float] = []
    print(f"settling ({physics.engine_version()}, dt {physics.DT:.5f} s), {scenes} scenes per category:")
    for category in sorted(PHYSICS_DEFAULT):
        settle_ms, frame_ms, steps = [], [], []
        for rank in range(scenes):
            cfg = GenConfig(category=category, seed=10_000 + rank, rank=rank, strata=r_sequence(rank))
            scene = GENERATORS[category](cfg, np.random.default_rng(10_000 + rank))
            t0 = time.perf_counter()
            settled = physics.settle(scene, seed=rank)
            t1 = time.perf_counter()
            frame(settled, np.random.default_rng(rank), fill=FILL.get(category, (0.2, 0.6)), aspect=1.0)
            t2 = time.perf_counter()
            settle_ms.append((t1 - t0) * 1e3)
            frame_ms.append((t2 - t1) * 1e3)
            steps.append(settled.physics.steps if settled.physics else 0)
        every += settle_ms
        print(f"  {category:12s} settle median {statistics.median(settle_ms):6.1f} ms  p90 {_pct(settle_ms, 90):6.1f} ms"
              f"  framing median {statistics.median(frame_ms):5.2f} ms  steps mean {statistics.mean(steps):.0f}")
    med = statistics.median(every)
    print(f"  all          settle median {med:6.1f} ms  p90 {_pct(every, 90):6.1f} ms")
    return med


def bench_sensor(size: int = 512, runs: int = 30) -> float:
    """Prints and returns the median time of the sensor model on a size x size render (ms)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size, :size] / size
    rgb = np.stack([0.2 + 0.5 * x, 0.3 + 0.4 * y, 0.25 + 0.2 * x * y], -1).astype(np.float32)
    rgb += rng.normal(0, 0.01, rgb.shape).astype(np.float32)
    index = (np.floor(x * 4) + 4 * np.floor(y * 4)).astype(np.float32)
    out = RenderOutput(rgb=rgb, depth=np.full((size, size), 3.0, np.float32), index=index,
                       normals=np.zeros((size, size, 3), np.float32), render_seconds=0.0, spp=1)
    k = post.intrinsics(Camera(location=(0.0, -4.0, 2.0), look_at=(0.0, 0.0, 0.0)), size, size)
    spec = SensorSpec(enabled=True)
    sensor.apply(sensor.draw(spec, 0), out, k)  # lookup tables built once per worker
    times, cpu = [], []
    for seed in range(runs):
        p = sensor.draw(spec, seed)
        t0, c0 = time.perf_counter(), time.process_time()
        sensor.apply(p, out, k)
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    med = statistics.median(times)
    print(f"sensor model on {size}x{size} (rgb + depth + ids + normals, JPEG), one thread: wall median {med:.1f} ms, "
          f"p90 {_pct(times, 90):.1f} ms; CPU median {statistics.median(cpu):.1f} ms (target < 20 ms)")
    return med


def bench_render(samples: int, settle_ms: float) -> None:
    """Render physics-category samples at the default preset; print the settling share of render time."""
    from synth_render.blender.renderer import BlenderRenderer
    from synth_render.sample import plan_sample, render_sample

    spec = SynthDatasetSpec.model_validate({
        "samples": 100, "seed": 3, "render": {"device": "cpu", "sensor": {"enabled": True}},
        "categories": [{"name": c} for c in sorted(PHYSICS_DEFAULT)],
        "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0},
        "output": {"uri": "file:///tmp/unused"}, "image": "bench"})
    renderer = BlenderRenderer(device="cpu")
    seconds = []
    for index in range(samples):
        done = render_sample(spec, plan_sample(spec, index), renderer, dataset="bench")
        seconds.append(done.render_seconds)
        print(f"  sample {index} ({done.meta['category']}): render {done.render_seconds:.1f} s")
    render_ms = statistics.median(seconds) * 1e3
    print(f"default preset (512x512, 16-64 spp, CPU): render median {render_ms / 1e3:.1f} s; "
          f"settling {settle_ms:.0f} ms = {100 * settle_ms / render_ms:.1f} % of it (target < 15 %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=20, help="scenes per physics category")
    ap.add_argument("--render-samples", type=int, default=2, help="default-preset renders (0: no Blender)")
    args = ap.parse_args()
    settle_ms = bench_settling(args.scenes)
    bench_sensor()
    if args.render_samples:
        bench_render(args.render_samples, settle_ms)


if __name__ == "__main__":
    main()
