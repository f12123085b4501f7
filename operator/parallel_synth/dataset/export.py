"""``synthctl export``: a rendered dataset in the formats training code loads (COCO, BOP, NeRF).

Streaming: shards are read one at a time as streams (local disk or S3, through
``Store``), each sample's members are decoded, written out and dropped, so memory does
not grow with the dataset. COCO's single ``annotations.json`` is streamed too: images are
written as they come and annotations go to a side file appended at the end.

Pure parts (RLE, boxes, pose conversions) are module functions tested without I/O.

- ``coco``: ``DIR/annotations.json`` (instances; RLE masks from ``seg.png`` in pycocotools'
  compressed form, ``[x, y, w, h]`` boxes, ``category_id`` = ``classId``, ``file_name`` =
  ``{key}.png``); ``--images`` writes ``DIR/images/{key}.png``.
- ``bop``: ``DIR/train_pbr/{shard:06d}/`` with ``scene_gt.json`` (``cam_R_m2c``, ``cam_t_m2c`` in
  mm, ``obj_id`` = ``classId``), ``scene_camera.json`` (``cam_K``), ``scene_gt_info.json``
  (``bbox_visib``, ``px_count_visib``, ``visib_fract``) and ``mask_visib/{im}_{gt}.png``;
  ``--images`` adds ``rgb/{im}.png``. ``im_id`` is the sample's global index.
- ``nerf``: ``DIR/{key}/transforms.json`` (instant-ngp: OpenGL camera-to-world, +x right, +y up,
  -z forward) and ``DIR/{key}/images/``: one folder per sample, one frame per view.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from parallel_synth.dataset.files import committed_shards, read_json
from parallel_synth.dataset.tars import Sample, ScanResult, scan_shard
from synth_contract import layout
from synth_contract.classes import class_ids
from synth_contract.layout import DATASET_JSON
from synth_contract.store import Store

FORMATS = ("coco", "bop", "nerf")


# --------------------------------------------------------------------------- pure helpers


def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts of a boolean mask (column-major, starting with a zero run)."""
    flat = np.asarray(mask, dtype=bool).T.ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    return ([0, *counts] if flat[0] else counts)


def rle_string(counts: list[int]) -> str:
    """pycocotools' compressed RLE string (``maskApi.c`` rleToString)."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def xywh(bbox: list[int]) -> list[int]:
    """Inclusive ``[x_min, y_min, x_max, y_max]`` to COCO ``[x, y, w, h]``."""
    x0, y0, x1, y1 = (int(v) for v in bbox)
    return [x0, y0, x1 - x0 + 1, y1 - y0 + 1]


def opengl_c2w(extrinsics: Any) -> list[list[float]]:
    """OpenCV world-to-camera 4x4 -> OpenGL camera-to-world (instant-ngp / NeRF transforms.json)."""
    c2w = np.linalg.inv(np.asarray(extrinsics, dtype=np.float64))
    c2w = c2w @ np.diag([1.0, -1.0, -1.0, 1.0])
    return [[round(float(v), 9) + 0.0 for v in row] for row in c2w]


def nerf_camera(intrinsics: Any, width: int, height: int) -> dict[str, Any]:
    k = np.asarray(intrinsics, dtype=np.float64)
    fx, fy = float(k[0, 0]), float(k[1, 1])
    return {"camera_angle_x": 2 * math.atan(width / (2 * fx)), "camera_angle_y": 2 * math.atan(height / (2 * fy)),
            "fl_x": fx, "fl_y": fy, "cx": float(k[0, 2]), "cy": float(k[1, 2]), "w": width, "h": height,
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0}


def _decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im)


# --------------------------------------------------------------------------- streaming over samples


@dataclass
class ExportStats:
    shards: int = 0
    samples: int = 0
    annotations: int = 0
    classes: dict[int, str] = field(default_factory=dict)
    skipped: int = 0
    """Samples the format leaves out (nerf: the stills and sequences of a dataset with multi-view samples)."""


def iter_samples(files: Store, shard: int, load: frozenset[str]) -> Iterator[tuple[str, dict[str, bytes]]]:
    result = ScanResult()
    with files.open(layout.shard_path(shard)) as stream:
        for item in scan_shard(stream, result, load=load):
            if isinstance(item, Sample) and "json" in item.data:
                yield item.key, item.data
    if result.error:
        raise ValueError(f"{layout.shard_path(shard)}: {result.error}")


def dataset_classes(files: Store) -> dict[str, int]:
    """name -> id from ``dataset.json`` ``classes`` (empty when the dataset has no summary yet)."""
    if not files.exists(DATASET_JSON):
        return {}
    return class_ids(read_json(files, DATASET_JSON).get("classes", []))


class _ClassIds:
    """classId of an object: its own, else the dataset's vocabulary, else first-seen order."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = dict(vocab)
        self.used: dict[int, str] = {}

    def __call__(self, obj: dict[str, Any]) -> int:
        name = str(obj.get("class", "unknown"))
        cid = obj.get("classId")
        if not isinstance(cid, int):
            if name not in self.vocab:
                self.vocab[name] = max(self.vocab.values(), default=0) + 1
            cid = self.vocab[name]
        self.used[int(cid)] = name
        return int(cid)


# --------------------------------------------------------------------------- writers


def _write_png(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def export_dataset(files: Store, fmt: str, out: Path, *, images: bool = False,
                   on_shard: Callable[[int, int], None] | None = None) -> ExportStats:
    """Export every committed shard of a dataset; returns counts. ``on_shard(done, total)`` reports progress."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: allowed are {', '.join(FORMATS)}")
    shards = committed_shards(files)
    out.mkdir(parents=True, exist_ok=True)
    ids = _ClassIds(dataset_classes(files))
    stats = ExportStats()
    writer = {"coco": _Coco, "bop": _Bop, "nerf": _Nerf}[fmt](out, images=images, class_id=ids, stats=stats)
    if isinstance(writer, _Nerf):
        writer.views_only = _has_multi_view(files)
    try:
        for n, shard in enumerate(shards):
            for key, data in iter_samples(files, shard, writer.load):
                meta = json.loads(data["json"])
                if not writer.wants(meta):
                    stats.skipped += 1
                    continue
                writer.add(key, shard, meta, data)
                stats.samples += 1
            stats.shards += 1
            if on_shard is not None:
                on_shard(n + 1, len(shards))
        writer.finish()
    finally:
        writer.close()
    stats.classes = dict(sorted(ids.used.items()))
    return stats


def _has_multi_view(files: Store) -> bool:
    """Whether ``dataset.json``'s spec gives any category more than one camera (render.views or
    categories[].render.views); False without a usable one."""
    from pydantic import ValidationError

    from synth_contract.api import SynthDatasetSpec
    from synth_contract.multiview import max_counts

    if not files.exists(DATASET_JSON):
        return False
    try:
        spec = SynthDatasetSpec.model_validate(read_json(files, DATASET_JSON)["spec"])
    except (ValueError, TypeError, KeyError, RecursionError, ValidationError, OSError):
        return False
    return max_counts(spec)[0] > 1


class _Writer:
    load: frozenset[str] = frozenset({"json"})

    def wants(self, meta: dict[str, Any]) -> bool:
        """Whether the format exports this sample (all by default)."""
        return True

    def __init__(self, out: Path, *, images: bool, class_id: _ClassIds, stats: ExportStats) -> None:
        self.out, self.images, self.class_id, self.stats = out, images, class_id, stats

    def add(self, key: str, shard: int, meta: dict[str, Any], data: dict[str, bytes]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Coco(_Writer):
    def __init__(self, out: Path, **kw: Any) -> None:
        super().__init__(out, **kw)
        self.load = frozenset({"json", "seg.png", *(("png",) if self.images else ())})
        self._tmp = tempfile.TemporaryDirectory(prefix="synth-coco-", dir=out)
        self._final = out / "annotations.json"
        self._partial = Path(self._tmp.name) / "annotations.json"
        self._ann = (Path(self._tmp.name) / "anns.jsonl").open("w")
        self._img = self._partial.open("w")
        self._img.write('{"info": {"description": "parallel-synth export", "version": "1.0"}, "licenses": [], '
                        '"images": [')
        self._first_img = self._first_ann = True

    def add(self, key: str, shard: int, meta: dict[str, Any], data: dict[str, bytes]) -> None:
        if "seg.png" not in data:
            raise ValueError(f"sample {key}: no seg.png (COCO masks need the segmentation pass)")
        seg = _decode(data["seg.png"])
        h, w = seg.shape[:2]
        image_id = int(meta.get("index", self.stats.samples))
        self._img.write(("" if self._first_img else ",") + json.dumps(
            {"id": image_id, "file_name": f"{key}.png", "width": w, "height": h,
             "caption": meta.get("caption"), "category": meta.get("category")}))
        self._first_img = False
        for obj in meta.get("objects", []):
            mask = seg == int(obj["id"])
            area = int(mask.sum())
            if area == 0:
                continue
            ys, xs = np.nonzero(mask)
            ann = {"id": self.stats.annotations + 1, "image_id": image_id, "category_id": self.class_id(obj),
                   "segmentation": {"size": [h, w], "counts": rle_string(rle_counts(mask))}, "area": area,
                   "bbox": xywh([int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]), "iscrowd": 0,
                   "instance_id": int(obj["id"])}
            for src, dst in (("visibleFraction", "visible_fraction"), ("truncated", "truncated"),
                             ("box3d", "box3d"), ("pose", "pose")):
                if src in obj:
                    ann[dst] = obj[src]
            self._ann.write(json.dumps(ann) + "\n")
            self.stats.annotations += 1
        if self.images and "png" in data:
            _write_png(self.out / "images" / f"{key}.png", data["png"])

    def finish(self) -> None:
        self._ann.close()
        self._img.write('], "annotations": [')
        with (Path(self._tmp.name) / "anns.jsonl").open() as src:
            first = True
            for line in src:
                self._img.write(("" if first else ",") + line.rstrip("\n"))
                first = False
        cats = [{"id": cid, "name": name, "supercategory": "object"} for cid, name in
                sorted({v: k for k, v in self.class_id.vocab.items()}.items())]
        self._img.write('], "categories": ' + json.dumps(cats) + "}\n")
        self._img.close()
        shutil.move(str(self._partial), self._final)

    def close(self) -> None:
        for f in (self._ann, self._img):
            if not f.closed:
                f.close()
        self._tmp.cleanup()


class _Bop(_Writer):
    """One BOP scene per shard; scene files are flushed when the shard changes (bounded by a shard)."""

    def __init__(self, out: Path, **kw: Any) -> None:
        super().__init__(out, **kw)
        self.load = frozenset({"json", "seg.png", *(("png",) if self.images else ())})
        self._shard: int | None = None
        self._gt: dict[str, Any] = {}
        self._cam: dict[str, Any] = {}
        self._info: dict[str, Any] = {}

    def _dir(self, shard: int) -> Path:
        return self.out / "train_pbr" / f"{shard:06d}"

    def _flush(self) -> None:
        if self._shard is None:
            return
        d = self._dir(self._shard)
        d.mkdir(parents=True, exist_ok=True)
        for name, doc in (("scene_gt.json", self._gt), ("scene_camera.json", self._cam),
                          ("scene_gt_info.json", self._info)):
            (d / name).write_text(json.dumps(doc, indent=1) + "\n")
        self._gt, self._cam, self._info = {}, {}, {}

    def add(self, key: str, shard: int, meta: dict[str, Any], data: dict[str, bytes]) -> None:
        if shard != self._shard:
            self._flush()
            self._shard = shard
        if "seg.png" not in data:
            raise ValueError(f"sample {key}: no seg.png (BOP masks need the segmentation pass)")
        seg = _decode(data["seg.png"])
        im = int(meta.get("index", self.stats.samples))
        k = np.asarray(meta["camera"]["intrinsics"], dtype=np.float64)
        self._cam[str(im)] = {"cam_K": [float(v) for v in k.ravel()], "depth_scale": 1.0}
        gts, infos = [], []
        for n, obj in enumerate(o for o in meta.get("objects", []) if "pose" in o):
            pose = np.asarray(obj["pose"], dtype=np.float64)
            gts.append({"cam_R_m2c": [float(v) for v in pose[:3, :3].ravel()],
                        "cam_t_m2c": [float(v) * 1000.0 for v in pose[:3, 3]], "obj_id": self.class_id(obj)})
            mask = seg == int(obj["id"])
            infos.append({"bbox_visib": xywh(obj["bbox"]), "px_count_visib": int(mask.sum()),
                          "visib_fract": float(obj.get("visibleFraction", 1.0))})
            buf = io.BytesIO()
            Image.fromarray((mask * 255).astype(np.uint8)).save(buf, format="PNG")
            _write_png(self._dir(shard) / "mask_visib" / f"{im:06d}_{n:06d}.png", buf.getvalue())
            self.stats.annotations += 1
        self._gt[str(im)] = gts
        self._info[str(im)] = infos
        if self.images and "png" in data:
            _write_png(self._dir(shard) / "rgb" / f"{im:06d}.png", data["png"])

    def finish(self) -> None:
        self._flush()


class _Nerf(_Writer):
    """One folder per sample with ``transforms.json``: a frame per view (one frame for a still).

    In a dataset with multi-view samples (``views_only``) only those are exported: a still or a
    sequence of one category next to them is no novel-view scene."""

    views_only = False

    def __init__(self, out: Path, **kw: Any) -> None:
        super().__init__(out, **kw)
        self.load = frozenset({"json", "png", *(f"view{k:02d}.png" for k in range(100))})

    def wants(self, meta: dict[str, Any]) -> bool:
        return not self.views_only or (isinstance(meta.get("views"), list) and len(meta["views"]) > 1)

    def add(self, key: str, shard: int, meta: dict[str, Any], data: dict[str, bytes]) -> None:
        d = self.out / key
        views = meta.get("views")
        frames = []
        if isinstance(views, list) and views:
            for v in views:
                k = int(v["view"])
                name = f"{key}.view{k:02d}.png"
                png = data.get(f"view{k:02d}.png") or (data.get("png") if k == 0 else None)
                if png is None:
                    continue
                _write_png(d / "images" / name, png)
                frames.append((name, v["intrinsics"], v["extrinsics"], png))
        else:
            frames.append((f"{key}.png", meta["camera"]["intrinsics"], meta["camera"]["extrinsics"], data["png"]))
            _write_png(d / "images" / f"{key}.png", data["png"])
        if not frames:
            return
        with Image.open(io.BytesIO(frames[0][3])) as im:
            w, h = im.size
        doc = {**nerf_camera(frames[0][1], w, h), "aabb_scale": 4, "scale": 1.0, "offset": [0.0, 0.0, 0.0],
               "frames": [{"file_path": f"images/{name}", "transform_matrix": opengl_c2w(ext),
                           **({"fl_x": float(np.asarray(kk)[0][0]), "fl_y": float(np.asarray(kk)[1][1])}
                              if len(frames) > 1 else {})}
                          for name, kk, ext, _ in frames]}
        (d / "transforms.json").write_text(json.dumps(doc, indent=1) + "\n")
        self.stats.annotations += len(frames)
