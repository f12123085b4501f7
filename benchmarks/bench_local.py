"""Benchmark of local mode: parallel efficiency of the worker pool, and the parent's memory.

Prints two figures:

1. Parallel efficiency of ``generate`` with the real renderer (Blender on the CPU): wall time
   and samples/s with 1 worker and with 2 workers, each worker pinned to one core, and the
   speed-up (target: 2 workers >= 1.7x one worker on a 2-core machine). One worker using every
   core through Blender's own threads is printed for comparison.
2. Peak RSS of the parent process for 10, 1,000 and 10,000 shards planned, with a renderer
   that commits instantly, so the figure is the scheduler's own footprint (target: flat).

Run:  python benchmarks/bench_local.py [--samples 48] [--repeat 2] [--skip-render] [--skip-rss]
Other people's processes on the same cores skew figure 1; run it on a quiet machine. The
"machine ceiling" lines measure what two plain CPU-bound processes get at that moment (2.0x
on two idle cores): the render speed-up cannot exceed it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from parallel_synth.local.generate import run_dataset
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import open_store

HERE = Path(__file__).resolve().parent


class _Quiet:
    """A display that prints nothing and remembers when the first sample arrived."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None

    def update(self, snap: dict[str, Any], *, force: bool = False) -> None:
        if self.first is None and snap["samples"] > 0:
            self.first = (time.perf_counter(), snap["samples"])

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def null_run_shard(spec: SynthDatasetSpec, dataset: str, shard: int, *, store: Any, stop: Any = None,
                   progress: Any = None) -> dict[str, Any]:
    """A renderer that commits at once: one progress event per sample, then the manifest."""
    files = open_store(store) if isinstance(store, str) else store
    r = planning.shard_range(spec, shard)
    if progress is not None:
        for i in r:
            progress({"index": i, "category": planning.category_of(spec, i), "score": 1.0, "seconds": 0.0})
    files.write_bytes(layout.manifest_path(shard), json.dumps({"shard": shard, "samples": len(r)}).encode())
    return {"status": "committed", "samples": len(r)}


def _spec(root: Path, *, samples: int, shard_size: int, size: int, spp: int) -> SynthDatasetSpec:
    return SynthDatasetSpec.model_validate({
        "samples": samples, "seed": 11, "shardSize": shard_size,
        "render": {"resolutions": [{"width": size, "height": size}], "samples": {"min": spp, "max": spp},
                   "denoise": False, "passes": ["rgb", "depth", "segmentation"]},
        "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0},
        "output": {"uri": root.as_uri()}, "image": "bench",
    })


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _spin(_: int) -> float:
    t0, x = time.perf_counter(), 0
    for i in range(20_000_000):
        x += i * i
    return time.perf_counter() - t0


def machine_ceiling() -> float:
    """Throughput of 2 processes of pure CPU work over 1: what the machine gives right now.

    2.0 on two idle cores; other people's processes on the same cores bring it down, and the
    render speed-up cannot exceed it.
    """
    import multiprocessing as mp

    one = _spin(0)
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [0, 0])  # start-up outside the timing
        t0 = time.perf_counter()
        pool.map(_spin, [0, 1])
        two = time.perf_counter() - t0
    return 2 * one / two


def render_run(workers: int, *, samples: int, cores_per_worker: int | None) -> dict[str, float]:
    """Wall time, steady rate (after the first sample: no start-up) and the workers' CPU time."""
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        spec = _spec(Path(tmp), samples=samples, shard_size=2, size=128, spp=16)
        files = open_store(layout.dataset_root(spec.output.uri, "bench", spec.version))
        display = _Quiet()
        cpu0, t0 = _children_cpu(), time.perf_counter()
        result = run_dataset(spec, "bench", files, display, workers=workers, log_dir=str(Path(tmp) / "logs"),
                             cores_per_worker=cores_per_worker)
        t1 = time.perf_counter()
        if result.status != "complete" or display.first is None:
            raise SystemExit(f"render run failed: {result}")
        tf, nf = display.first
        return {"wall": t1 - t0, "steady": (samples - nf) / (t1 - tf), "cpu": _children_cpu() - cpu0}


def rss_child(shards: int) -> None:
    """Run in a fresh process: schedule ``shards`` shards, print the parent's peak RSS in KiB."""
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        spec = _spec(Path(tmp), samples=shards * 10, shard_size=10, size=64, spp=1)
        files = open_store(layout.dataset_root(spec.output.uri, "rss", spec.version))
        t0 = time.perf_counter()
        result = run_dataset(spec, "rss", files, _Quiet(), workers=2, renderer="bench_local:null_run_shard",
                             log_dir=str(Path(tmp) / "logs"))
        assert result.status == "complete", result
        print(json.dumps({"shards": shards, "maxrssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                          "seconds": time.perf_counter() - t0}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=48, help="samples per render run (128x128, 16 spp)")
    ap.add_argument("--repeat", type=int, default=1, help="render runs per configuration (best is kept)")
    ap.add_argument("--skip-render", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child is not None:
        rss_child(args.rss_child)
        return
    print(f"machine: {len(os.sched_getaffinity(0))} usable cores, load average {os.getloadavg()[0]:.2f}")
    if not args.skip_render:
        n = args.samples
        runs = {
            "1 worker, 1 core": (1, 1),
            "2 workers, 1 core each": (2, 1),
            "1 worker, all cores (Blender threads)": (1, None),
        }
        ceiling = machine_ceiling()
        print(f"machine ceiling before (2 CPU-bound processes vs 1): {ceiling:.2f}x", flush=True)
        best: dict[str, dict[str, float]] = {}
        for label, (w, cpw) in runs.items():
            best[label] = min((render_run(w, samples=n, cores_per_worker=cpw) for _ in range(args.repeat)),
                              key=lambda r: r["wall"])
            r = best[label]
            print(f"generate {n} samples (128x128, 16 spp), {label:38s}: {r['wall']:6.1f} s wall, "
                  f"{n / r['wall']:5.2f} samples/s overall, {r['steady']:5.2f} samples/s after start-up, "
                  f"workers' CPU {r['cpu']:5.1f} s = {r['cpu'] / n:.2f} CPU-s/sample "
                  f"({r['cpu'] / r['wall']:.2f} cores busy)", flush=True)
        after = machine_ceiling()
        print(f"machine ceiling after: {after:.2f}x", flush=True)
        one, two = best["1 worker, 1 core"], best["2 workers, 1 core each"]
        overall, steady = one["wall"] / two["wall"], two["steady"] / one["steady"]
        print(f"speed-up 2 workers vs 1: {overall:.2f}x overall, {steady:.2f}x after start-up "
              f"(target >= 1.70x; parallel efficiency {overall / 2:.0%} / {steady / 2:.0%})")
        # Other people's processes steal cores unevenly between runs; CPU time per sample does not
        # depend on that, so it gives the speed-up two dedicated cores would show.
        print(f"contention-free estimate (CPU-s/sample, 1 worker / 2 workers x 2 cores): "
              f"{2 * one['cpu'] / two['cpu']:.2f}x")
        allcores = best["1 worker, all cores (Blender threads)"]
        print(f"speed-up 2 workers vs 1 worker using all cores via threads: {allcores['wall'] / two['wall']:.2f}x")
    if not args.skip_rss:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        for shards in (10, 1_000, 10_000):
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--rss-child", str(shards)],
                                 capture_output=True, text=True, check=True, env=env)
            doc = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"parent peak RSS with {shards:>6,} shards planned: {doc['maxrssKiB'] / 1024:7.1f} MiB "
                  f"({doc['seconds']:.1f} s, {shards / doc['seconds']:,.0f} shards/s scheduled)", flush=True)


if __name__ == "__main__":
    main()
