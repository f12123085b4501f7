"""Re-render check: does a warm worker render the same bytes as a fresh process, sample by sample?

Prints its figures; it is not a test (``tests/renderer/test_renderer_rerender.py`` is the test).
One process renders samples 0..N-1 in order with one long-lived renderer (as the shard worker
does); then every sample is rendered again in a fresh process (as ``synthctl render-sample``
does), on the same machine with the same thread count, and each file of each sample is compared
byte for byte:

    python benchmarks/bench_rerender.py                       # 100 samples of examples/quickstart.yaml
    python benchmarks/bench_rerender.py --samples 30 --show   # and name the files and pixels that differ

The figure is ``identical k/N`` (samples whose every file is the same bytes). With ``--show``,
each differing PNG is decoded and the number of differing pixels and the largest difference are
printed (RGB may differ where Blender cannot be made exact; labels must not).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_RENDER = """
import json, sys
from pathlib import Path
from synth_contract.validation import load_dataset
from synth_render.sample import plan_sample, render_sample
from synth_render.shard_run import shared_renderer
obj = load_dataset(sys.argv[1])
spec, out = obj.spec, Path(sys.argv[2])
renderer = shared_renderer(str(spec.render.device), str(spec.render.engine))
for index in json.loads(sys.argv[3]):
    s = render_sample(spec, plan_sample(spec, index), renderer, dataset=obj.metadata.name)
    for ext, data in s.files.items():
        (out / f"{s.key}.{ext}").write_bytes(data)
"""


def _render(manifest: Path, out: Path, indexes: list[int], env: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", _RENDER, str(manifest), str(out), json.dumps(indexes)], check=True,
                   env=env, stdout=subprocess.DEVNULL)


def _files(folder: Path) -> dict[str, dict[str, bytes]]:
    by_key: dict[str, dict[str, bytes]] = {}
    for p in sorted(folder.iterdir()):
        key, ext = p.name.split(".", 1)
        by_key.setdefault(key, {})[ext] = p.read_bytes()
    return by_key


def _pixel_diff(a: bytes, b: bytes) -> str:
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(io.BytesIO(a))).astype(np.int64)
    y = np.asarray(Image.open(io.BytesIO(b))).astype(np.int64)
    if x.shape != y.shape:
        return f"shape {x.shape} vs {y.shape}"
    d = np.abs(x - y)
    px = d.reshape(d.shape[0], d.shape[1], -1).max(axis=-1)
    return f"{int((px > 0).sum())} pixels differ, max {int(d.max())}"


def compare(warm: dict[str, dict[str, bytes]], fresh: dict[str, dict[str, bytes]], *,
            show: bool) -> tuple[int, list[str]]:
    """(samples whose files are all identical, lines naming the differing files)."""
    same, lines = 0, []
    for key in sorted(warm):
        a, b = warm[key], fresh.get(key, {})
        bad = sorted(ext for ext in set(a) | set(b) if a.get(ext) != b.get(ext))
        if not bad:
            same += 1
            continue
        meta = json.loads(a["json"]) if "json" in a else {}
        lines.append(f"  {key} ({meta.get('category', '?')}): {', '.join(bad)}")
        if show:
            for ext in bad:
                if ext.endswith("png") and ext in a and ext in b:
                    lines.append(f"    {ext}: {_pixel_diff(a[ext], b[ext])}")
    return same, lines


def digest(files: dict[str, dict[str, bytes]]) -> str:
    h = hashlib.sha256()
    for key in sorted(files):
        for ext in sorted(files[key]):
            h.update(f"{key}.{ext}".encode())
            h.update(files[key][ext])
    return h.hexdigest()[:16]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path, default=Path(__file__).resolve().parent.parent / "examples/quickstart.yaml")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--show", action="store_true", help="Name the pixels that differ in each differing PNG.")
    args = p.parse_args()
    env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}
    indexes = list(range(args.start, args.start + args.samples))
    print(f"machine: {os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}, "
          f"load average {os.getloadavg()[0]:.2f}; manifest {args.manifest}")
    with tempfile.TemporaryDirectory(prefix="bench-rerender-") as td:
        t0 = time.perf_counter()
        _render(args.manifest, Path(td) / "warm", indexes, env)
        t1 = time.perf_counter()
        for i in indexes:
            _render(args.manifest, Path(td) / "fresh", [i], env)
        t2 = time.perf_counter()
        warm, fresh = _files(Path(td) / "warm"), _files(Path(td) / "fresh")
    same, lines = compare(warm, fresh, show=args.show)
    cats: dict[str, Any] = {}
    for files in warm.values():
        c = json.loads(files["json"]).get("category", "?")
        cats[c] = cats.get(c, 0) + 1
    print(f"categories: {', '.join(f'{k} {v}' for k, v in sorted(cats.items()))}")
    print(f"warm worker {t1 - t0:.1f} s, {len(indexes)} fresh processes {t2 - t1:.1f} s")
    print("\n".join(lines))
    print(f"identical {same}/{len(indexes)}  (every file of a sample the same bytes; "
          f"python {sys.argv[0]} --samples {args.samples})")


if __name__ == "__main__":
    main()
