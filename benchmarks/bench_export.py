"""Benchmark ``synthctl export``: samples/s and peak RSS on synthetic datasets of growing size.

The datasets are made by code (WebDataset shards of 64x64 samples with 6 objects each, the
JSON a real sample carries: boxes, classId, pose, box3d, caption), no Blender. Each export
runs in a fresh process so that its peak RSS (``ru_maxrss``) is its own: flat across sizes
means the export streams. Prints one line per (format, size).

    .venv/bin/python benchmarks/bench_export.py [--sizes 1000,10000] [--formats coco,bop,nerf]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SHARD_SIZE = 1000


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def make_dataset(root: Path, samples: int) -> None:
    from synth_contract import layout, planning
    from synth_render.shards import ShardWriter

    rng = np.random.default_rng(0)
    rgb = _png(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (root / "shards").mkdir(parents=True)
    (root / "manifests").mkdir()
    classes = [{"id": i + 1, "name": n} for i, n in enumerate(["cone", "cube", "cylinder", "ico", "sphere", "torus"])]
    (root / "dataset.json").write_text(json.dumps({"classes": classes}))
    for shard in range((samples + SHARD_SIZE - 1) // SHARD_SIZE):
        w = ShardWriter(root / layout.shard_path(shard))
        for index in range(shard * SHARD_SIZE, min(samples, (shard + 1) * SHARD_SIZE)):
            seg = np.zeros((64, 64), np.uint8)
            objects = []
            for oid in range(1, 7):
                x, y = (int(v) for v in rng.integers(0, 54, 2))
                seg[y:y + 10, x:x + 10] = oid
            for oid in range(1, 7):
                ys, xs = np.nonzero(seg == oid)
                if len(xs):
                    pose = np.eye(4)
                    pose[:3, 3] = [0.1 * oid, 0.0, 4.0]
                    objects.append({"id": oid, "class": classes[oid % 6]["name"], "classId": oid % 6 + 1,
                                    "bbox": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())],
                                    "pixels": len(xs), "pose": pose.tolist(), "visibleFraction": 0.9,
                                    "box3d": {"center": pose[:3, 3].tolist(), "size": [0.5] * 3,
                                              "rotation": np.eye(3).tolist()}})
            meta = {"index": index, "key": planning.sample_key(index), "caption": "a cube and a sphere",
                    "camera": {"intrinsics": [[70.0, 0, 32], [0, 70.0, 32], [0, 0, 1]],
                               "extrinsics": np.eye(4).tolist()}, "objects": objects}
            w.add(planning.sample_key(index), {"png": rgb, "json": json.dumps(meta).encode(), "seg.png": _png(seg)})
        w.finish()
        (root / layout.manifest_path(shard)).write_text(json.dumps({"shard": shard}))


def _child(root: str, fmt: str, out: str) -> None:
    from parallel_synth.dataset.export import export_dataset
    from synth_contract.store import FileStore

    t0 = time.perf_counter()
    stats = export_dataset(FileStore(Path(root)), fmt, Path(out))
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples": stats.samples, "seconds": secs, "peakRssMb": rss}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--formats", default="coco,bop,nerf")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            root = Path(tmp) / f"ds{size}"
            t0 = time.perf_counter()
            make_dataset(root, size)
            made = time.perf_counter() - t0
            for fmt in args.formats.split(","):
                out = Path(tmp) / f"out-{fmt}-{size}"
                res = subprocess.run([sys.executable, __file__, "--child", str(root), fmt, str(out)],
                                     check=True, capture_output=True, text=True)
                r = json.loads(res.stdout.strip().splitlines()[-1])
                print(f"export {fmt:5s} {r['samples']:>7,} samples: {r['samples'] / r['seconds']:8,.0f} samples/s, "
                      f"peak RSS {r['peakRssMb']:6.1f} MB  (dataset made in {made:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
