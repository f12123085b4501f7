"""The index step at scale: bytes read per sample, samples/s and peak RSS, old path (every tar) vs new (parts).

Writes made-up committed shards fast (no rendering): per shard a WebDataset tar whose samples carry a
realistic ``{key}.json`` and a PNG of ``--image-bytes`` (a header plus filler: the old path reads it
all, the new one never opens it), the shard's index part (``synth_render.shards.index_part``, what
the worker writes) and a manifest naming it. Then runs ``write_index`` in a child process per path
and size (so each peak RSS is its own) and prints one line each:

    .venv/bin/python benchmarks/bench_index.py --samples 10000 1000000

The old path is the same ``write_index`` over manifests without ``indexPart`` (what a dataset
committed before parts looks like), so it streams every tar. Its bytes per sample scale with the
images: at the reference plan's ~5 MB a sample they are ~5e6, against the new path's metadata only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "contract"), str(ROOT / "operator"), str(ROOT / "renderer-image")]

from synth_contract import index_rows, layout, planning  # noqa: E402
from synth_contract.api import ALL_CATEGORIES, SynthDatasetSpec  # noqa: E402


def _png(width: int, height: int, size: int) -> bytes:
    """A PNG signature and IHDR (what the index reads) followed by ``size`` bytes of filler."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return head + b"\0" * max(0, size - len(head))


def _spec(root: Path, samples: int, shard_size: int) -> SynthDatasetSpec:
    return SynthDatasetSpec.model_validate({
        "samples": samples, "seed": 1, "shardSize": shard_size, "image": "renderer:bench",
        "categories": [{"name": c, "weight": 1} for c in ALL_CATEGORIES],
        "output": {"uri": root.as_uri()}})


def _meta(spec: SynthDatasetSpec, index: int, shard: int, rng: random.Random) -> dict[str, Any]:
    cat = planning.category_of(spec, index)
    return {
        "index": index, "seed": planning.sample_seed(spec.seed, spec.version, index), "category": cat,
        "shard": shard, "scene": {"generator": cat, "objects": rng.randrange(1, 6)},
        "params": {"count": rng.randrange(1, 8), "size": rng.uniform(0.3, 2.0), "hue": rng.random(),
                   "kind": rng.choice(["a", "b", "c"])},
        "render": {"engine": "cycles", "width": 512, "height": 512, "samples": 128, "denoise": True},
        "camera": {"intrinsics": [[600.0, 0, 256], [0, 600.0, 256], [0, 0, 1]],
                   "extrinsics": [[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -5], [0, 0, 0, 1]]},
        "objects": [{"id": k + 1, "class": rng.choice(["cube", "sphere", "car", "person"]), "classId": k + 1,
                     "bbox": [rng.randrange(0, 200), rng.randrange(0, 200), rng.randrange(300, 511),
                              rng.randrange(300, 511)]} for k in range(rng.randrange(1, 5))],
        "environment": {"id": rng.choice(["studio.exr", "forest.exr", "city.exr"])},
        "quality": {"score": round(rng.betavariate(8, 2), 4), "passed": True, "noise": rng.random(),
                    "exposure": rng.random(), "attempts": 1},
    }


def build(root: Path, samples: int, shard_size: int, image_bytes: int) -> SynthDatasetSpec:
    """Committed shards with tars, index parts and manifests under ``root`` (a dataset root)."""
    from synth_render import shards

    spec = _spec(root.parents[1], samples, shard_size)
    rng = random.Random(0)
    png = _png(512, 512, image_bytes)
    for folder in (layout.SHARDS, layout.MANIFESTS, layout.INDEX_PARTS):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for shard in range(planning.shard_count(spec)):
        r = planning.shard_range(spec, shard)
        tar = root / layout.shard_path(shard)
        w = shards.ShardWriter(tar)
        cats: dict[str, int] = {}
        rows = []
        for i in r:
            meta = _meta(spec, i, shard, rng)
            cats[meta["category"]] = cats.get(meta["category"], 0) + 1
            w.add(planning.sample_key(i), {"png": png, "json": json.dumps(meta).encode()})
            rows.append(index_rows.index_row(meta, key=planning.sample_key(i), shard=shard, members=["json", "png"],
                                             size=(512, 512)))  # what shards.index_part reads back from the tar
        size, digest = w.finish()
        part = index_rows.part_bytes(rows)
        entry = index_rows.part_entry(shard, part, len(rows))
        (root / layout.index_part_path(shard)).write_bytes(part)
        man = {"shard": shard, "samples": len(r), "firstIndex": r.start, "lastIndex": r.stop - 1, "sha256": digest,
               "bytes": size, "categories": dict(sorted(cats.items())), "indexPart": entry,
               "quality": {"mean": 0.8, "min": 0.5, "passRate": 1.0, "rerenders": 0, "scores": [0.8] * len(r)},
               "timings": {"renderSeconds": 1.0, "totalSeconds": 1.0, "sampleSeconds": [0.1] * len(r)},
               "quarantined": {"samples": 0, "keys": [], "categories": {}, "path": None},
               "device": "bench", "engine": "cycles", "commit": {"fenced": True}}
        (root / layout.manifest_path(shard)).write_text(json.dumps(man, sort_keys=True, separators=(",", ":")))
    return spec


class _WithoutParts:
    """The dataset as one committed before index parts: manifests without ``indexPart`` (old path)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.uri = store.uri

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read_bytes(self, path: str) -> bytes | None:
        raw = self._store.read_bytes(path)
        if raw is not None and path.startswith(layout.MANIFESTS + "/"):
            doc = json.loads(raw)
            doc.pop("indexPart", None)
            return json.dumps(doc).encode()
        return raw


def child(root: Path, samples: int, shard_size: int, path: str) -> None:
    from datetime import UTC, datetime

    from parallel_synth.dataset.index import ReadCounter, write_index
    from synth_contract.store import FileStore

    spec = _spec(root.parents[1], samples, shard_size)
    store: Any = FileStore(root)
    if path == "old":
        store = _WithoutParts(store)
    counter = ReadCounter()
    t0 = time.perf_counter()
    doc = write_index(spec, "bench", store, now=datetime.now(UTC), counter=counter)
    seconds = time.perf_counter() - t0
    use = resource.getrusage(resource.RUSAGE_SELF)
    index = root / layout.INDEX_PARQUET
    sha = hashlib.sha256(index.read_bytes()).hexdigest() if index.exists() else ""
    print(json.dumps({"samples": doc["samples"]["completed"], "seconds": seconds, "bytes": counter.total,
                      "cpu": use.ru_utime + use.ru_stime, "sha": sha,
                      "tars": counter.tars, "parts": counter.parts, "manifests": counter.manifests,
                      "rss": use.ru_maxrss * 1024}))


def _measure(root: Path, samples: int, shard_size: int, path: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", path, "--root", str(root), "--samples", str(samples),
                          "--shard-size", str(shard_size)], capture_output=True, text=True, check=True)
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, nargs="+", default=[10_000, 1_000_000])
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--image-bytes", type=int, default=2048, help="PNG bytes per sample in the made-up tars.")
    p.add_argument("--paths", nargs="+", default=["old", "new"], choices=["old", "new"])
    p.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.root, args.samples[0], args.shard_size, args.child)
        return
    for n in args.samples:
        base = Path(tempfile.mkdtemp(prefix="bench-index-"))
        try:
            root = base / "bench" / "v1"
            t0 = time.perf_counter()
            build(root, n, args.shard_size, args.image_bytes)
            tars = sum(f.stat().st_size for f in (root / layout.SHARDS).iterdir())
            parts = sum(f.stat().st_size for f in (root / layout.INDEX_PARTS).iterdir())
            print(f"{n:,} samples in {planning.shard_count(_spec(base, n, args.shard_size)):,} shards written in "
                  f"{time.perf_counter() - t0:.0f} s: tars {tars / n:,.0f} B/sample, parts {parts / n:,.0f} B/sample",
                  flush=True)
            shas = set()
            for path in args.paths:
                r = _measure(root, n, args.shard_size, path)
                shas.add(r["sha"])
                print(f"  {path:3} path: {r['bytes'] / n:10,.0f} bytes read/sample (tars {r['tars'] / n:,.0f}, "
                      f"parts {r['parts'] / n:,.0f}, manifests {r['manifests'] / n:,.0f}), "
                      f"{n / r['seconds']:8,.0f} samples/s wall ({r['seconds']:.1f} s), "
                      f"{n / r['cpu']:8,.0f} samples per CPU-second, peak RSS {r['rss'] / 2**20:,.0f} MiB", flush=True)
            if len(args.paths) > 1:
                print(f"  the same index/metadata.parquet from both paths: {'yes' if len(shas) == 1 else 'NO'}",
                      flush=True)
        finally:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
