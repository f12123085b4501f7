"""``synthctl preview``: a contact sheet to see at a glance that the data is right.

One row per category, a few samples per row; each sample's segmentation mask is overlaid in
translucent colours (one colour per object id) and every object's bounding box is drawn with
its class name, so a misaligned mask, a box off by a few pixels, or a category that renders
empty frames is visible immediately. Shards are streamed in order and reading stops as soon
as every category has its samples. ``compose_sheet`` is pure (arrays in, image out).
"""

from __future__ import annotations

import colorsys
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from parallel_synth import planning
from parallel_synth.local.records import object_class
from parallel_synth.local.store import DatasetFiles
from parallel_synth.local.tars import Sample, ScanResult, scan_shard

LABEL_WIDTH = 130
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


def id_color(oid: int) -> tuple[int, int, int]:
    """A stable, well-separated colour per object id (golden-ratio hues)."""
    r, g, b = colorsys.hsv_to_rgb((oid * 0.61803398875) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def overlay(rgb: np.ndarray, seg: np.ndarray | None, *, alpha: float = 0.45) -> np.ndarray:
    """The RGB image with each non-zero id of ``seg`` tinted in its colour."""
    out = rgb.astype(np.float32)
    if seg is not None and seg.shape[:2] == rgb.shape[:2]:
        for oid in np.unique(seg):
            if oid == 0:
                continue
            mask = seg == oid
            out[mask] = (1 - alpha) * out[mask] + alpha * np.array(id_color(int(oid)), np.float32)
    return out.clip(0, 255).astype(np.uint8)


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _cell(s: PreviewSample, cell: int) -> Image.Image:
    h, w = s.rgb.shape[:2]
    scale = cell / max(h, w)
    img = Image.fromarray(overlay(s.rgb, s.seg)).resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR
    )
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
        draw.rectangle(box, outline=color, width=2)
        label = object_class(obj)
        if label:
            tw = draw.textlength(label, font=font)
            tx, ty = max(1.0, min(box[0] + 2, img.width - tw - 2)), max(0.0, box[1] - 12)
            draw.rectangle((tx - 1, ty, tx + tw + 1, ty + 11), fill=(0, 0, 0))
            draw.text((tx, ty), label, fill=color, font=font)
    draw.text((3, img.height - 13), s.key + (f"  q={s.score:.2f}" if s.score is not None else ""),
              fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
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


def _decode(item: Sample) -> PreviewSample | None:
    if "json" not in item.data or "png" not in item.data:
        return None
    meta = json.loads(item.data["json"])
    rgb = np.asarray(Image.open(io.BytesIO(item.data["png"])).convert("RGB"))
    seg = None
    if "seg.png" in item.data:
        seg = np.asarray(Image.open(io.BytesIO(item.data["seg.png"])))
        if seg.ndim == 3:
            seg = seg[..., 0]
    q = meta.get("quality")
    score = q.get("score") if isinstance(q, dict) else None
    objects = [o for o in meta.get("objects", []) if isinstance(o, dict)]
    return PreviewSample(item.key, str(meta.get("category", "?")), rgb, seg, objects,
                         float(score) if isinstance(score, int | float) else None)


def collect_samples(
    files: DatasetFiles, *, categories: Iterable[str] | None, per_row: int, max_shards: int | None = None
) -> dict[str, list[PreviewSample]]:
    """Up to ``per_row`` samples per category, read from the first committed shards."""
    wanted = list(categories) if categories is not None else None
    rows: dict[str, list[PreviewSample]] = {c: [] for c in wanted} if wanted else {}
    shards = (int(rel[len("manifests/") : -len(".json")]) for rel in files.list("manifests")
              if rel.endswith(".json") and rel[len("manifests/") : -len(".json")].isdigit())
    for n, shard in enumerate(shards):
        if max_shards is not None and n >= max_shards:
            break
        result = ScanResult()
        with files.open(planning.shard_path(shard)) as stream:
            for item in scan_shard(stream, result, load=frozenset({"json", "png", "seg.png"})):
                if not isinstance(item, Sample):
                    continue
                s = _decode(item)
                if s is None or (wanted is not None and s.category not in rows):
                    continue
                row = rows.setdefault(s.category, [])
                if len(row) < per_row:
                    row.append(s)
        if wanted is not None and all(len(v) >= per_row for v in rows.values()):
            break
    return rows
