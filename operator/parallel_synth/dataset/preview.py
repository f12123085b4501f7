"""``synthctl preview``: a contact sheet to see at a glance that the data is right.

One row per category, a few samples per row; each sample's segmentation mask is drawn as a
one-pixel outline over a faint tint (one colour per object id, so the render itself stays
visible) and every object's bounding box is drawn with its class name, so a misaligned mask, a box off by a few pixels, or a category that renders
empty frames is visible immediately. Shards are streamed in order and reading stops as soon
as every category has its samples. ``compose_sheet`` is pure (arrays in, image out).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from parallel_synth.dataset.files import (
    BadSummary,
    listed_manifests,
    load_summary,
    open_file,
    read_manifest,
    strict_json,
)
from parallel_synth.dataset.images import MAX_PIXELS, decode_png
from parallel_synth.dataset.records import metadata_problems, object_class
from parallel_synth.dataset.tars import Sample, ScanResult, scan_shard
from synth_contract import layout, planning
from synth_contract.store import Store

LABEL_WIDTH = 130
MASK_ALPHA = 0.18
"""Opacity of the mask tint on the sheet: enough to tell objects apart, light enough to see the render."""
HEADER = 28
PAD = 4


@dataclass
class PreviewSample:
    key: str
    category: str
    rgb: np.ndarray  # HxWx3 uint8
    seg: np.ndarray | None  # HxW integer ids
    objects: list[dict[str, Any]] = field(default_factory=list)
    score: float | None = None
    others: list[np.ndarray] = field(default_factory=list)
    """Thumbnails of a multi-view sample's other views or a sequence's later frames (render.views/frames)."""
    series: str = ""
    """``8 views`` / ``8 frames`` for such samples."""


def id_color(oid: int) -> tuple[int, int, int]:
    """A stable, well-separated colour per object id (golden-ratio hues)."""
    r, g, b = colorsys.hsv_to_rgb((oid * 0.61803398875) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def overlay(rgb: np.ndarray, seg: np.ndarray | None, *, alpha: float = 0.45) -> np.ndarray:
    """The RGB image with each non-zero id of ``seg`` tinted in its colour."""
    out = rgb.astype(np.float32)
    if seg is not None and seg.shape[:2] == rgb.shape[:2]:
        mask = seg != 0
        if mask.any():  # one pass whatever the number of ids (a hostile mask may hold 65535)
            ids, which = np.unique(seg[mask], return_inverse=True)
            colors = np.array([id_color(int(oid)) for oid in ids], np.float32)
            out[mask] = (1 - alpha) * out[mask] + alpha * colors[which.reshape(-1)]
    return out.clip(0, 255).astype(np.uint8)


def outline(rgb: np.ndarray, seg: np.ndarray | None) -> np.ndarray:
    """The RGB image with the border pixels of each non-zero id of ``seg`` painted in its colour."""
    out = rgb.copy()
    if seg is None or seg.shape[:2] != rgb.shape[:2]:
        return out
    edge = np.zeros(seg.shape[:2], bool)
    edge[1:, :] |= seg[1:, :] != seg[:-1, :]
    edge[:-1, :] |= seg[:-1, :] != seg[1:, :]
    edge[:, 1:] |= seg[:, 1:] != seg[:, :-1]
    edge[:, :-1] |= seg[:, :-1] != seg[:, 1:]
    edge &= seg != 0
    if edge.any():
        ids, which = np.unique(seg[edge], return_inverse=True)
        colors = np.array([id_color(int(oid)) for oid in ids], np.uint8)
        out[edge] = colors[which.reshape(-1)]
    return out


def _nearest(seg: np.ndarray, width: int, height: int) -> np.ndarray:
    """``seg`` resized to width x height without mixing ids (any integer dtype)."""
    rows = np.minimum((np.arange(height) + 0.5) * seg.shape[0] / height, seg.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(width) + 0.5) * seg.shape[1] / width, seg.shape[1] - 1).astype(int)
    return seg[rows[:, None], cols[None, :]]


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _cell(s: PreviewSample, cell: int) -> Image.Image:
    h, w = s.rgb.shape[:2]
    scale = cell / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    rgb = np.asarray(Image.fromarray(s.rgb).resize(size, Image.Resampling.BILINEAR))
    seg = _nearest(s.seg, *size) if s.seg is not None and s.seg.shape[:2] == (h, w) else None
    img = Image.fromarray(outline(overlay(rgb, seg, alpha=MASK_ALPHA), seg))  # at cell size: crisp 1-px edges
    draw = ImageDraw.Draw(img)
    font = _font(11)
    for obj in s.objects:
        bbox = obj.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4):
            continue
        x0, y0, x1, y1 = (float(v) for v in bbox)
        # Inclusive pixel box -> the outline around those pixels.
        box = (x0 * scale, y0 * scale, (x1 + 1) * scale - 1, (y1 + 1) * scale - 1)
        color = id_color(int(obj.get("id", 0)))
        draw.rectangle(box, outline=color, width=1)
        label = object_class(obj)
        if label:
            tw = draw.textlength(label, font=font)
            tx, ty = max(1.0, min(box[0] + 2, img.width - tw - 2)), max(0.0, box[1] - 12)
            draw.rectangle((tx - 1, ty, tx + tw + 1, ty + 11), fill=(0, 0, 0))
            draw.text((tx, ty), label, fill=color, font=font)
    draw.text((3, img.height - 13), s.key + (f"  q={s.score:.2f}" if s.score is not None else "")
              + (f"  {s.series}" if s.series else ""),
              fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
    thumb = max(8, img.width // 4)  # the other views/frames along the top edge, right to left
    for n, other in enumerate(s.others[:3]):
        small = Image.fromarray(other).resize((thumb, max(1, round(thumb * other.shape[0] / other.shape[1]))),
                                              Image.Resampling.BILINEAR)
        x = img.width - (n + 1) * (thumb + 1)
        img.paste(small, (x, 0))
        draw.rectangle((x, 0, x + small.width - 1, small.height - 1), outline=(255, 255, 255))
    return img


def compose_sheet(
    rows: dict[str, list[PreviewSample]], *, per_row: int, cell: int = 192, title: str = ""
) -> Image.Image:
    """The contact sheet: one row per category (in the given order), ``per_row`` cells each."""
    width = LABEL_WIDTH + per_row * (cell + PAD) + PAD
    height = HEADER + max(1, len(rows)) * (cell + PAD) + PAD
    sheet = Image.new("RGB", (width, height), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, 6), title, fill=(230, 230, 230), font=_font(15))
    for r, (category, samples) in enumerate(rows.items()):
        y = HEADER + r * (cell + PAD)
        draw.text((PAD, y + cell // 2 - 16), category, fill=(230, 230, 230), font=_font(15))
        draw.text((PAD, y + cell // 2 + 4), f"{len(samples)} shown", fill=(150, 150, 150), font=_font(11))
        for c, s in enumerate(samples[:per_row]):
            img = _cell(s, cell)
            x = LABEL_WIDTH + c * (cell + PAD)
            sheet.paste(img, (x + (cell - img.width) // 2, y + (cell - img.height) // 2))
    return sheet


def _usable_object(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    bbox = obj.get("bbox")
    return (isinstance(obj.get("id", 0), int) and isinstance(bbox, list) and len(bbox) == 4
            and all(isinstance(v, int | float) and math.isfinite(v) and abs(v) < 1e6 for v in bbox))


def _decode(item: Sample, *, max_pixels: int = MAX_PIXELS, shard: int | None = None) -> PreviewSample | str:
    """The sample ready to draw, or why it cannot be drawn (never raises on hostile bytes)."""
    if "json" not in item.data or "png" not in item.data:
        return f"{item.key}: no .json or .png"
    try:
        meta = strict_json(item.data["json"])
    except RecursionError:
        return f"{item.key}.json: nested too deeply"
    except (ValueError, UnicodeDecodeError):
        return f"{item.key}.json: not valid JSON"
    if not isinstance(meta, dict):
        return f"{item.key}.json: not a JSON object"
    problems = metadata_problems(meta, key=item.key, shard=shard if shard is not None else -1,
                                 spec=None, size=None)
    objects = meta.get("objects")
    huge = [o["id"] for o in objects if isinstance(o, dict) and isinstance(o.get("id"), int) and o["id"] > 65535] \
        if isinstance(objects, list) else []
    if huge:
        problems.append(f"object id {str(huge[0])[:24]} is larger than a mask can hold (65535)")
    if problems:
        return f"{item.key}.json: {'; '.join(problems[:3])}"
    rgb, _, problem = decode_png(item.data["png"], max_pixels=max_pixels)
    if rgb is None:
        return f"{item.key}.png {problem}"
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    rgb = rgb[..., :3]
    if rgb.dtype != np.uint8:
        rgb = (rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb.astype(np.uint8)
    seg = None
    if "seg.png" in item.data:
        seg, _, problem = decode_png(item.data["seg.png"], max_pixels=max_pixels)
        if problem is not None:
            return f"{item.key}.seg.png {problem}"
        if seg is not None and (seg.ndim != 2 or seg.shape[:2] != rgb.shape[:2]):
            return (f"{item.key}.seg.png is {'x'.join(map(str, seg.shape))}, not a mask of the "
                    f"{rgb.shape[1]}x{rgb.shape[0]} image")
    q = meta.get("quality")
    score = q.get("score") if isinstance(q, dict) else None
    objects = meta.get("objects")
    objects = [o for o in objects if _usable_object(o)] if isinstance(objects, list) else []
    others, series = _series(item, meta, max_pixels=max_pixels)
    return PreviewSample(item.key, str(meta.get("category", "?"))[:64], rgb, seg, objects,
                         float(score) if isinstance(score, int | float) and math.isfinite(score) else None,
                         others, series)


SERIES_THUMBS = tuple(f"view{k:02d}.png" for k in (1, 2, 3)) + tuple(f"frame{t:03d}.png" for t in (1, 2, 3))
"""Members drawn as thumbnails of a multi-view sample or a sequence (``render.views``/``render.frames``)."""


def _series(item: Sample, meta: dict[str, Any], *, max_pixels: int) -> tuple[list[np.ndarray], str]:
    for field_name in ("views", "frames"):
        entries = meta.get(field_name)
        if isinstance(entries, list) and len(entries) > 1:
            thumbs = []
            for name in SERIES_THUMBS:
                if name.startswith(field_name[:-1]) and name in item.data:
                    arr, _, _ = decode_png(item.data[name], max_pixels=max_pixels)
                    if arr is not None and arr.ndim == 3 and arr.dtype == np.uint8:
                        thumbs.append(arr[..., :3])
            return thumbs, f"{len(entries)} {field_name}"
    return [], ""


def dataset_title(files: Store) -> tuple[list[str] | None, str, str | None]:
    """(categories in spec order, sheet title, warning) from ``dataset.json`` when it is usable."""
    try:
        summary = load_summary(files)
    except BadSummary as exc:
        return None, files.uri, f"{exc} (run synthctl validate); showing the shards as they are"
    if summary is None:
        return None, files.uri, None
    doc, spec = summary
    completed = int((doc.get("samples") or {}).get("completed") or 0)
    return list(planning.category_targets(spec)), f"{str(doc.get('name', ''))[:64]} v{spec.version}: " \
        f"{completed:,} samples", None


def collect_samples(
    files: Store, *, categories: Iterable[str] | None, per_row: int, max_shards: int | None = None,
    skipped: list[str] | None = None,
) -> dict[str, list[PreviewSample]]:
    """Up to ``per_row`` samples per category, read from the first committed shards.

    Samples (and shards) that cannot be used are left out; why goes into ``skipped``.
    """
    wanted = list(categories) if categories is not None else None
    rows: dict[str, list[PreviewSample]] = {c: [] for c in wanted} if wanted else {}
    for n, shard in enumerate(listed_manifests(files)):
        if max_shards is not None and n >= max_shards:
            break
        result = ScanResult()
        try:
            read_manifest(files, shard)
        except ValueError as exc:
            if skipped is not None:
                skipped.append(f"{exc}: shard {shard} left out")
            continue
        try:
            with open_file(files, layout.shard_path(shard)) as stream:
                for item in scan_shard(stream, result, load=frozenset({"json", "png", "seg.png", *SERIES_THUMBS})):
                    if not isinstance(item, Sample):
                        if skipped is not None:
                            skipped.append(f"{layout.shard_path(shard)}: member {item.name!r} left out: {item.reason}")
                        continue
                    s = _decode(item, shard=shard)
                    if isinstance(s, str):
                        if skipped is not None:
                            skipped.append(s)
                        continue
                    if wanted is not None and s.category not in rows:
                        continue
                    row = rows.setdefault(s.category, [])
                    if len(row) < per_row:
                        row.append(s)
        except OSError as exc:  # a directory, FIFO or link out where the tar should be, a vanished file
            if skipped is not None:
                skipped.append(f"{layout.shard_path(shard)}: {exc}" if str(exc).startswith(layout.SHARDS)
                               else f"{layout.shard_path(shard)}: {type(exc).__name__}: {exc}")
            continue
        if result.error and skipped is not None:
            skipped.append(f"{layout.shard_path(shard)}: {result.error}")
        if wanted is not None and all(len(v) >= per_row for v in rows.values()):
            break
    return rows
