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

from parallel_synth.dataset.files import (
    BadFile,
    BadSummary,
    listed_manifests,
    load_summary,
    open_file,
    read_manifest,
    strict_json,
)
from parallel_synth.dataset.images import decode_png, png_header
from parallel_synth.dataset.records import metadata_problems
from parallel_synth.dataset.tars import Hostile, ScanResult, scan_shard
from synth_contract import layout
from synth_contract.classes import class_ids
from synth_contract.store import Store

FORMATS = ("coco", "bop", "nerf")
MAX_LISTED = 20
"""Problems listed in the error message; the count covers all of them."""
MAX_OBJECT_ID = 65535
"""Largest object id a segmentation mask can hold (16-bit)."""


class ExportProblem(ValueError):
    """The dataset holds something the format cannot take (each problem named): exit 1."""


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


def _finite_matrix(value: Any, rows: int, cols: int) -> np.ndarray | None:
    """``value`` as a finite float matrix of that shape, or None."""
    try:
        m = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    return m if m.shape == (rows, cols) and bool(np.isfinite(m).all()) else None


def camera_problem(intrinsics: Any, extrinsics: Any, where: str) -> str | None:
    """Why a camera cannot become a NeRF/BOP camera (a 3x3 K with positive focal lengths, an invertible
    4x4 world-to-camera), or None."""
    k = _finite_matrix(intrinsics, 3, 3)
    if k is None:
        return f"{where}intrinsics is not a finite 3x3 matrix"
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        return f"{where}intrinsics has focal lengths {k[0, 0]:g}, {k[1, 1]:g} (must be > 0)"
    e = _finite_matrix(extrinsics, 4, 4)
    if e is None:
        return f"{where}extrinsics is not a finite 4x4 matrix"
    if not abs(np.linalg.det(e[:3, :3])) > 1e-12 or np.linalg.cond(e) > 1e12:
        return f"{where}extrinsics is singular (no camera-to-world)"
    return None


def sample_problems(key: str, shard: int, meta: Any, data: dict[str, bytes], fmt: str) -> list[str]:
    """What keeps a sample out of ``fmt`` (empty: nothing): the metadata checks ``validate`` applies, plus
    what the format reads (ids, cameras, views, the mask's size against the image)."""
    problems = metadata_problems(meta, key=key, shard=shard, spec=None, size=None)
    if not isinstance(meta, dict):
        return problems
    needed = {"coco": ("objects",), "bop": ("objects", "camera"),
              "nerf": () if isinstance(meta.get("views"), list) and meta["views"] else ("camera",)}[fmt]
    problems = [p for p in problems if not p.startswith("missing field")]  # only what the format reads:
    problems += [f"missing field {f!r}" for f in needed if f not in meta]
    index = meta.get("index")
    if isinstance(index, int) and not isinstance(index, bool) and not 0 <= index < 2**53:
        problems.append(f"index {index} is not a sample index (0..2^53)")
    objects = meta.get("objects")
    for i, obj in enumerate(objects if isinstance(objects, list) else []):
        oid = obj.get("id") if isinstance(obj, dict) else None
        if isinstance(oid, int) and oid > MAX_OBJECT_ID:
            problems.append(f"objects[{i}].id {oid} is larger than a mask can hold ({MAX_OBJECT_ID})")
    if fmt in ("coco", "bop"):
        problems += _mask_problems(key, data)
    if fmt in ("nerf", "bop"):
        camera = meta.get("camera")
        views = meta.get("views")
        if fmt == "nerf" and views is not None:
            if not isinstance(views, list):
                problems.append("views is not a list")
            for i, v in enumerate(views if isinstance(views, list) else []):
                if not isinstance(v, dict):
                    problems.append(f"views[{i}] is not an object")
                    continue
                k = v.get("view")
                if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < 100:
                    problems.append(f"views[{i}].view must be an integer 0..99")
                    continue
                bad = camera_problem(v.get("intrinsics"), v.get("extrinsics"), f"views[{i}].")
                if bad:
                    problems.append(bad)
        elif isinstance(camera, dict):
            bad = camera_problem(camera.get("intrinsics"), camera.get("extrinsics"), "camera.")
            if bad:
                problems.append(bad)
        elif "camera" not in meta:
            pass  # metadata_problems names the missing field
    if fmt == "nerf" and "png" not in data:
        problems.append("no .png (the RGB image)")
    return problems


def _mask_problems(key: str, data: dict[str, bytes]) -> list[str]:
    if "seg.png" not in data:
        return [f"no {key}.seg.png (COCO and BOP masks need the segmentation pass)"]
    seg, header, problem = decode_png(data["seg.png"])
    if problem is not None or seg is None or header is None:
        return [f"{key}.seg.png {problem or 'cannot be decoded'}"]
    if seg.ndim != 2:
        return [f"{key}.seg.png is not a single-channel mask (shape {'x'.join(map(str, seg.shape))})"]
    rgb = png_header(data.get("png", b""))
    if "png" not in data:
        return [f"no {key}.png (the image the masks belong to)"]
    if isinstance(rgb, str):
        return [f"{key}.png {rgb}"]
    if (rgb.width, rgb.height) != (header.width, header.height):
        return [f"{key}.seg.png is {header.width}x{header.height}, the image {key}.png is {rgb.width}x{rgb.height}"]
    return []


# --------------------------------------------------------------------------- streaming over samples


@dataclass
class ExportStats:
    shards: int = 0
    samples: int = 0
    annotations: int = 0
    classes: dict[int, str] = field(default_factory=dict)
    skipped: int = 0
    """Samples the format leaves out (nerf: the stills and sequences of a dataset with multi-view samples)."""
    problems: list[str] = field(default_factory=list)
    """Why samples (or shards, or members) were not exported, at most ``MAX_LISTED``."""
    problem_count: int = 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)


def iter_samples(files: Store, shard: int, load: frozenset[str], stats: ExportStats | None = None,
                 heads: frozenset[str] = frozenset()) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The samples of a shard that have metadata; hostile members, samples without ``.json`` and a
    damaged tar are problems (in ``stats``; without it the first one raises :class:`ExportProblem`)."""
    def problem(text: str) -> None:
        if stats is None:
            raise ExportProblem(text)
        stats.problem(text)

    rel = layout.shard_path(shard)
    result = ScanResult()
    try:
        stream = open_file(files, rel)
    except (BadFile, FileNotFoundError, IsADirectoryError, PermissionError, ValueError) as exc:
        problem(f"{rel}: cannot be read: {exc}")
        return
    with stream:
        for item in scan_shard(stream, result, load=load, heads=heads):
            if isinstance(item, Hostile):
                problem(f"{rel}: member {item.name!r} not exported: {item.reason}")
            elif "json" in item.data:
                yield item.key, item.data
            else:
                problem(f"{rel}: sample {item.key} has no .json (members {', '.join(sorted(item.sizes))[:80]})")
    if result.error:
        problem(f"{rel}: {result.error} (the samples after the damage are missing)")


def dataset_classes(files: Store) -> dict[str, int]:
    """name -> id from ``dataset.json`` ``classes`` (empty when the dataset has no summary yet).

    Raises :class:`ExportProblem` naming ``dataset.json`` and the field when it is there but unusable.
    """
    summary = _summary(files)
    return class_ids(summary[0].get("classes", [])) if summary else {}


def _summary(files: Store) -> tuple[dict[str, Any], Any] | None:
    try:
        return load_summary(files)
    except BadSummary as exc:
        raise ExportProblem(str(exc)) from None


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
    shards = listed_manifests(files)
    vocab = dataset_classes(files)
    out.mkdir(parents=True, exist_ok=True)
    ids = _ClassIds(vocab)
    stats = ExportStats()
    writer = {"coco": _Coco, "bop": _Bop, "nerf": _Nerf}[fmt](out, images=images, class_id=ids, stats=stats)
    if isinstance(writer, _Nerf):
        writer.views_only = _has_multi_view(files)
    try:
        for n, shard in enumerate(shards):
            try:
                read_manifest(files, shard)
            except ValueError as exc:
                stats.problem(f"{exc}: shard {shard} not exported (its commit marker is unusable)")
                continue
            for key, data in iter_samples(files, shard, writer.load, stats, heads=writer.heads):
                meta = _meta(data["json"])
                if isinstance(meta, str):
                    stats.problem(f"sample {key}: {key}.json {meta}")
                    continue
                if not writer.wants(meta):
                    stats.skipped += 1
                    continue
                problems = sample_problems(key, shard, meta, data, fmt)
                if problems:
                    stats.problem(f"sample {key}: " + "; ".join(problems[:4]))
                    continue
                try:
                    writer.add(key, shard, meta, data)
                except _SampleError as exc:
                    stats.problem(f"sample {key}: {exc}")
                    continue
                stats.samples += 1
            stats.shards += 1
            if on_shard is not None:
                on_shard(n + 1, len(shards))
        writer.finish()
    finally:
        writer.close()
    stats.classes = dict(sorted(ids.used.items()))
    return stats


class _SampleError(ValueError):
    """A sample the writer could not take after all (left out, named)."""


def _meta(raw: bytes) -> dict[str, Any] | str:
    """A sample's metadata, or why it is not usable (never raises on hostile bytes)."""
    try:
        meta = strict_json(raw)
    except RecursionError:
        return "is not valid JSON: nested too deeply"
    except (ValueError, UnicodeDecodeError) as exc:
        return f"is not valid JSON: {str(exc)[:120]}"
    if not isinstance(meta, dict):
        return f"is not a JSON object ({type(meta).__name__})"
    return meta


def _dumps(doc: Any) -> str:
    """JSON text of an exported record; a NaN or infinity in the metadata is the sample's problem."""
    try:
        return json.dumps(doc, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise _SampleError(f"holds a value JSON cannot carry ({str(exc)[:100]})") from None


def _has_multi_view(files: Store) -> bool:
    """Whether ``dataset.json``'s spec gives any category more than one camera (render.views or
    categories[].render.views); False without a summary."""
    from synth_contract.multiview import max_counts

    summary = _summary(files)
    return summary is not None and max_counts(summary[1])[0] > 1


class _Writer:
    load: frozenset[str] = frozenset({"json"})
    heads: frozenset[str] = frozenset()
    """Members of which only the header is read (the RGB image's size, when the images are not copied)."""

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
        self.heads = frozenset() if self.images else frozenset({"png"})
        self._ids: set[int] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="synth-coco-", dir=out)
        self._final = out / "annotations.json"
        self._partial = Path(self._tmp.name) / "annotations.json"
        self._ann = (Path(self._tmp.name) / "anns.jsonl").open("w")
        self._img = self._partial.open("w")
        self._img.write('{"info": {"description": "parallel-synth export", "version": "1.0"}, "licenses": [], '
                        '"images": [')
        self._first_img = self._first_ann = True

    def add(self, key: str, shard: int, meta: dict[str, Any], data: dict[str, bytes]) -> None:
        seg = _decode(data["seg.png"])
        h, w = seg.shape[:2]
        image_id = int(meta.get("index", self.stats.samples))
        if image_id in self._ids:
            raise _SampleError(f"index {image_id} repeats an earlier sample's (COCO image ids must be unique)")
        image = _dumps({"id": image_id, "file_name": f"{key}.png", "width": w, "height": h,
                        "caption": meta.get("caption"), "category": meta.get("category")})
        anns: list[str] = []
        for obj in meta.get("objects", []):
            mask = seg == int(obj["id"])
            area = int(mask.sum())
            if area == 0:
                continue
            ys, xs = np.nonzero(mask)
            ann = {"id": self.stats.annotations + len(anns) + 1, "image_id": image_id,
                   "category_id": self.class_id(obj),
                   "segmentation": {"size": [h, w], "counts": rle_string(rle_counts(mask))}, "area": area,
                   "bbox": xywh([int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]), "iscrowd": 0,
                   "instance_id": int(obj["id"])}
            for src, dst in (("visibleFraction", "visible_fraction"), ("truncated", "truncated"),
                             ("box3d", "box3d"), ("pose", "pose")):
                if src in obj:
                    ann[dst] = obj[src]
            anns.append(_dumps(ann))
        # all checked: write the sample whole
        self._ids.add(image_id)
        self._img.write(("" if self._first_img else ",") + image)
        self._first_img = False
        for line in anns:
            self._ann.write(line + "\n")
        self.stats.annotations += len(anns)
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
        self.heads = frozenset() if self.images else frozenset({"png"})
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
        seg = _decode(data["seg.png"])
        im = int(meta.get("index", self.stats.samples))
        if str(im) in self._cam:
            raise _SampleError(f"index {im} repeats an earlier sample's (BOP image ids must be unique)")
        k = np.asarray(meta["camera"]["intrinsics"], dtype=np.float64)
        cam = {"cam_K": [float(v) for v in k.ravel()], "depth_scale": 1.0}
        gts, infos, masks = [], [], []
        for n, obj in enumerate(o for o in meta.get("objects", []) if "pose" in o):
            pose = _finite_matrix(obj["pose"], 4, 4)
            if pose is None:
                raise _SampleError(f"objects[{n}].pose is not a finite 4x4 matrix")
            gts.append({"cam_R_m2c": [float(v) for v in pose[:3, :3].ravel()],
                        "cam_t_m2c": [float(v) * 1000.0 for v in pose[:3, 3]], "obj_id": self.class_id(obj)})
            mask = seg == int(obj["id"])
            infos.append({"bbox_visib": xywh(obj["bbox"]), "px_count_visib": int(mask.sum()),
                          "visib_fract": float(obj.get("visibleFraction", 1.0))})
            buf = io.BytesIO()
            Image.fromarray((mask * 255).astype(np.uint8)).save(buf, format="PNG")
            masks.append((self._dir(shard) / "mask_visib" / f"{im:06d}_{n:06d}.png", buf.getvalue()))
        _dumps([cam, gts, infos])
        for path, mask_png in masks:
            _write_png(path, mask_png)
        self.stats.annotations += len(masks)
        self._cam[str(im)] = cam
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
                frames.append((name, v["intrinsics"], v["extrinsics"], png))
        else:
            frames.append((f"{key}.png", meta["camera"]["intrinsics"], meta["camera"]["extrinsics"], data["png"]))
        if not frames:
            return
        header = png_header(frames[0][3])
        if isinstance(header, str):
            raise _SampleError(f"{frames[0][0]} {header}")
        w, h = header.width, header.height
        doc = {**nerf_camera(frames[0][1], w, h), "aabb_scale": 4, "scale": 1.0, "offset": [0.0, 0.0, 0.0],
               "frames": [{"file_path": f"images/{name}", "transform_matrix": opengl_c2w(ext),
                           **({"fl_x": float(np.asarray(kk)[0][0]), "fl_y": float(np.asarray(kk)[1][1])}
                              if len(frames) > 1 else {})}
                          for name, kk, ext, _ in frames]}
        _dumps(doc)
        for name, _, _, png in frames:
            _write_png(d / "images" / name, png)
        (d / "transforms.json").write_text(json.dumps(doc, indent=1) + "\n")
        self.stats.annotations += len(frames)
