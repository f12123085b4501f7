"""Draw docs/images/before-after.png: the same samples (same seeds) rendered by two trees, side by side.

    python docs/images/before_after.py BEFORE_DIR AFTER_DIR OUT.png

Each directory holds what ``synthctl render-sample`` wrote ({key}.png, {key}.json); pairs are
matched by key, one row per sample: before | after, with category and what changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw


def _caption(meta: dict) -> str:
    bits = [meta.get("category", "?")]
    phys = meta.get("scene", {}).get("physics")
    if phys:
        bits.append("settled")
    fr = meta.get("scene", {}).get("framing")
    if fr:
        bits.append(f"fill {fr['fill']:.2f}")
    sensor = meta.get("sensor")
    if isinstance(sensor, dict) and sensor.get("applied"):
        bits.append(f"k1 {sensor['distortion']['k1']:+.3f} q{sensor['jpegQuality']}")
    return "  ".join(bits)


def main(before: Path, after: Path, out: Path, *, cols: int = 2, tile: int = 168) -> None:
    keys = sorted(p.stem for p in after.glob("*.json") if (before / p.name).exists())
    rows = (len(keys) + cols - 1) // cols
    pad, label = 6, 14
    cell_w, cell_h = 2 * tile + pad, tile + label
    sheet = Image.new("RGB", (cols * (cell_w + 3 * pad) + pad, rows * (cell_h + pad) + pad + 18), (24, 24, 26))
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 3), "left: before (upright drop, generator camera, ideal pinhole)   "
                        "right: after (physics, framing, sensor); same seeds", fill=(230, 230, 230))
    for n, key in enumerate(keys):
        r, c = divmod(n, cols)
        x0, y0 = pad + c * (cell_w + 3 * pad), 18 + pad + r * (cell_h + pad)
        for k, root in enumerate((before, after)):
            img = Image.open(root / f"{key}.png").convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS)
            sheet.paste(img, (x0 + k * (tile + pad), y0 + label))
        meta = json.loads((after / f"{key}.json").read_text())
        draw.text((x0, y0), f"{int(key)}: {_caption(meta)}", fill=(230, 230, 230))
    sheet.save(out, optimize=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
