"""Time and memory of `synthctl report` (and of the coverage pass) on a synthetic 100k-sample dataset.

Writes a dataset root with ``--samples`` rows in ``index/metadata.parquet`` (the real schema),
``--shard-size`` samples per shard tar (32 px PNGs), a quarantine, and a ``dataset.json`` whose
``coverage`` is computed by the same ``Coverage`` pass ``write_index`` runs; then runs
``synthctl report`` in a child process and prints its wall time and peak RSS.

    .venv/bin/python benchmarks/bench_report.py --samples 100000
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "renderer-image")]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from PIL import Image  # noqa: E402

from parallel_synth.dataset.coverage import Coverage  # noqa: E402
from parallel_synth.dataset.records import INDEX_SCHEMA, QUALITY_COMPONENTS  # noqa: E402
from synth_contract.api import ALL_CATEGORIES  # noqa: E402
from synth_render import shards  # noqa: E402


def _meta(i: int, rng: random.Random) -> dict[str, object]:
    cat = ALL_CATEGORIES[i % len(ALL_CATEGORIES)]
    score = rng.betavariate(8, 2)
    return {"index": i, "category": cat, "seed": i,
            "params": {"count": rng.randrange(1, 8), "size": rng.uniform(0.3, 2.0), "hue": rng.random(),
                       "kind": rng.choice(["a", "b", "c"])},
            "objects": [{"id": k + 1, "class": rng.choice(["cube", "sphere", "car", "person"]),
                         "bbox": [0, 0, 5, 5]} for k in range(rng.randrange(1, 5))],
            "environment": {"id": rng.choice(["studio.exr", "forest.exr", "city.exr"])},
            "quality": {"score": score, "passed": True, **{c: rng.random() for c in QUALITY_COMPONENTS[1:]}}}


def build(root: Path, samples: int, shard_size: int) -> float:
    rng = random.Random(0)
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(buf, format="PNG")
    png = buf.getvalue()
    (root / "index").mkdir(parents=True)
    (root / "shards").mkdir()
    (root / "quarantine").mkdir()
    cov = Coverage()
    t_cov = 0.0
    writer = pq.ParquetWriter(root / "index/metadata.parquet", INDEX_SCHEMA, compression="zstd")
    shard_count = -(-samples // shard_size)
    for shard in range(shard_count):
        rows = []
        sw = shards.ShardWriter(root / "shards" / f"{shard:08d}.tar")
        for i in range(shard * shard_size, min(samples, (shard + 1) * shard_size)):
            meta = _meta(i, rng)
            t = time.perf_counter()
            cov.add(meta)
            t_cov += time.perf_counter() - t
            key = f"{i:012d}"
            sw.add(key, {"png": png, "json": json.dumps(meta).encode()})
            q = meta["quality"]
            rows.append({"key": key, "index": i, "shard": shard, "category": meta["category"], "seed": i,
                         "score": q["score"], "width": 32, "height": 32, "tar": f"shards/{shard:08d}.tar",
                         "members": ["json", "png"], "num_objects": len(meta["objects"]), "objects": [],
                         "metadata": json.dumps(meta), "passed": True,
                         "quality": {c: float(q[c]) for c in QUALITY_COMPONENTS}})
        sw.finish()
        writer.write_table(pa.Table.from_pylist(rows, schema=INDEX_SCHEMA))
    writer.close()
    held = shards.ShardWriter(root / "quarantine" / "00000000.tar")
    with open(root / "index/quarantine.jsonl", "w") as f:
        for k in range(5):
            held.add(f"q{k:011d}", {"png": png, "json": b"{}"})
            f.write(json.dumps({"shard": 0, "key": f"q{k:011d}", "category": "fluids", "score": 0.1 * k,
                                "reasons": ["noise: estimated sigma 0.2 > 0.06"]}) + "\n")
    held.finish()
    per_cat = samples // len(ALL_CATEGORIES)
    doc = {"name": "bench", "version": "1", "createdAt": "2026-01-01T00:00:00+00:00",
           "samples": {"target": samples, "completed": samples},
           "categories": {c: {"target": per_cat, "completed": per_cat, "quarantined": 0} for c in ALL_CATEGORIES},
           "quality": {"minScore": 0.5, "passRate": 0.97}, "quarantine": {"samples": 5, "reasons": {"noise": 5}},
           "segments": [], "renderSeconds": samples * 2.0, "bytes": samples * 4000,
           "spec": {"pricing": {"spotPerGpuHour": 0.35, "onDemandPerGpuHour": 1.0}, "nodePool": {"gpusPerWorker": 1}},
           "coverage": cov.result()}
    (root / "dataset.json").write_text(json.dumps(doc))
    return t_cov


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--shard-size", type=int, default=1000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp) / "ds"
        t0 = time.perf_counter()
        t_cov = build(root, args.samples, args.shard_size)
        print(f"built a {args.samples:,}-sample dataset in {time.perf_counter() - t0:.1f}s; "
              f"coverage pass {t_cov:.2f}s ({t_cov / args.samples * 1e6:.1f} us/sample)")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "parallel_synth.commands.cli", "report", str(root), "--out",
                              str(Path(tmp) / "report.html")], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if res.returncode != 0:
            sys.exit(res.stderr)
        size = (Path(tmp) / "report.html").stat().st_size
        print(f"synthctl report: {wall:.1f}s wall, peak RSS {max(peak, before) / 1024:.0f} MB, "
              f"HTML {size / 1e6:.2f} MB ({res.stdout.strip()})")


if __name__ == "__main__":
    main()
