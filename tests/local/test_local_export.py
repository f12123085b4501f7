"""``synthctl export --format nerf`` on a multi-view sample, without rendering (issue #14)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from parallel_synth.dataset.export import export_dataset
from synth_contract import layout
from synth_contract.store import FileStore
from synth_render.shards import ShardWriter


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _extrinsics(x: float) -> list[list[float]]:
    e = np.eye(4)
    e[:3, 3] = [-x, 0.0, 5.0]
    return e.tolist()


def test_nerf_writes_one_frame_per_view(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "shards").mkdir(parents=True)
    (root / "manifests").mkdir()
    k = [[50.0, 0.0, 16.0], [0.0, 50.0, 16.0], [0.0, 0.0, 1.0]]
    views = [{"view": v, "intrinsics": k, "extrinsics": _extrinsics(0.1 * v), "objects": []} for v in range(3)]
    meta = {"index": 0, "camera": {"intrinsics": k, "extrinsics": _extrinsics(0.0)}, "objects": [], "views": views}
    img = _png(np.zeros((32, 32, 3), np.uint8))
    w = ShardWriter(root / layout.shard_path(0))
    w.add("000000000000", {"png": img, "json": json.dumps(meta).encode(), "view01.png": img, "view02.png": img})
    w.finish()
    (root / layout.manifest_path(0)).write_text("{}")
    stats = export_dataset(FileStore(root), "nerf", tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "000000000000" / "transforms.json").read_text())
    assert stats.samples == 1 and len(doc["frames"]) == 3
    assert doc["w"] == 32 and doc["fl_x"] == 50.0 and doc["cx"] == 16.0
    for v, frame in enumerate(doc["frames"]):
        assert (tmp_path / "out" / "000000000000" / frame["file_path"]).is_file()
        c2w = np.asarray(frame["transform_matrix"])
        assert np.allclose(c2w[:3, 3], [0.1 * v, 0.0, -5.0])  # camera centre in the world
