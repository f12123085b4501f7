"""A stand-in for ``synth_render.worker.run_shard`` that draws rectangles with PIL.

It follows the data contract (WebDataset tar, ``{key}.png/.json/.seg.png/.depth.png``, the
shard manifest written last) so that local mode's pool, resume, index, validate and preview
are tested in seconds without Blender. ``FAKE_RENDER_DELAY`` (seconds per sample) slows it
down for the interruption test; ``FAKE_RENDER_FAIL`` ("shard:times") makes a shard fail.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import open_store

SIZE = 32


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def render_sample(spec: SynthDatasetSpec, index: int, shard: int) -> dict[str, bytes]:
    """The members of one sample (without the key)."""
    seed = planning.sample_seed(spec.seed, spec.version, index)
    rng = random.Random(seed)
    category = planning.category_of(spec, index)
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    rgb[:] = (rng.randrange(40, 90),) * 3
    seg = np.zeros((SIZE, SIZE), np.uint8)
    depth = np.full((SIZE, SIZE), 60000, np.uint16)
    objects = []
    for oid in (1, 2):
        x0, y0 = rng.randrange(0, SIZE - 10), rng.randrange(0, SIZE - 10)
        x1, y1 = x0 + rng.randrange(4, 10), y0 + rng.randrange(4, 10)
        rgb[y0 : y1 + 1, x0 : x1 + 1] = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        seg[y0 : y1 + 1, x0 : x1 + 1] = oid
        depth[y0 : y1 + 1, x0 : x1 + 1] = 1000 * oid
    for oid in (1, 2):
        ys, xs = np.nonzero(seg == oid)
        if len(xs):
            objects.append({"id": oid, "class": f"{category}-thing",
                            "bbox": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]})
    meta: dict[str, Any] = {
        "index": index, "seed": seed, "category": category, "shard": shard,
        "scene": {"generator": category, "background": int(rgb[0, 0, 0])},
        "render": {"engine": "fake", "width": SIZE, "height": SIZE, "samples": 1},
        "camera": {"intrinsics": [[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]],
                   "extrinsics": [[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -5], [0, 0, 0, 1]]},
        "objects": objects,
        "depth": {"scale": 0.001},
        "quality": {"score": round(0.6 + 0.4 * rng.random(), 3), "attempt": 0},
    }
    members = {"png": _png(rgb), "json": json.dumps(meta).encode()}
    if "segmentation" in spec.render.passes:
        members["seg.png"] = _png(seg)
    if "depth" in spec.render.passes:
        members["depth.png"] = _png(depth)
    return members


def write_shard_tar(spec: SynthDatasetSpec, shard: int, out: io.BufferedIOBase | Any,
                    samples: list[tuple[str, dict[str, bytes]]] | None = None) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        items = samples if samples is not None else [
            (planning.sample_key(i), render_sample(spec, i, shard)) for i in planning.shard_range(spec, shard)
        ]
        for key, members in items:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))


def manifest_for(spec: SynthDatasetSpec, shard: int, data: bytes) -> dict[str, Any]:
    r = planning.shard_range(spec, shard)
    return {
        "shard": shard, "samples": len(r), "firstIndex": r.start,
        "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
        "categories": planning.category_counts(spec, r.start, r.stop),
        "quality": {"mean": 0.8, "min": 0.6, "passRate": 1.0, "rerenders": 0},
        "timings": {"renderSeconds": 0.01, "totalSeconds": 0.01},
        "device": "cpu", "engine": "fake", "engineVersion": "0",
        "keys": [planning.sample_key(r.start), planning.sample_key(r.stop - 1)],
    }


def run_shard(spec: SynthDatasetSpec, dataset: str, shard: int, *, store: Any,
              stop: Any = None, progress: Any = None) -> dict[str, Any]:
    files = open_store(store) if isinstance(store, str) else store
    if files.exists(layout.manifest_path(shard)):
        return {"status": "skipped", "samples": 0}
    fail = os.environ.get("FAKE_RENDER_FAIL", "")
    if fail:
        which, times = (int(x) for x in fail.split(":"))
        marker = Path(os.environ["FAKE_RENDER_FAIL_DIR"]) / f"fail-{shard}"
        count = int(marker.read_text()) if marker.exists() else 0
        if shard == which and count < times:
            marker.write_text(str(count + 1))
            raise RuntimeError(f"injected failure {count + 1}")
    delay = float(os.environ.get("FAKE_RENDER_DELAY", "0"))
    samples = []
    for i in planning.shard_range(spec, shard):
        if stop is not None and stop.is_set():
            return {"status": "interrupted", "samples": len(samples)}
        if delay:
            time.sleep(delay)
        samples.append((planning.sample_key(i), render_sample(spec, i, shard)))
        if progress is not None:
            progress({"index": i, "category": planning.category_of(spec, i), "score": 0.8, "seconds": delay})
    buf = io.BytesIO()
    write_shard_tar(spec, shard, buf, samples)
    data = buf.getvalue()
    files.write_bytes(layout.shard_path(shard), data)
    files.write_bytes(layout.manifest_path(shard), json.dumps(manifest_for(spec, shard, data)).encode())
    return {"status": "committed", "samples": len(samples)}


def crash_on_import(*args: Any, **kwargs: Any) -> dict[str, Any]:
    raise AssertionError("never called: the worker dies while starting")


if os.environ.get("FAKE_RENDER_CRASH"):
    os._exit(3)  # a worker that dies while importing its renderer (like a broken bpy)
