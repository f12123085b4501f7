"""Decode and judge the image members of a sample, safely: what ``validate`` and ``preview`` trust.

A member called ``.png`` can be text, a GIF, a valid PNG header over a garbage body, or a
60000x60000 image that would take 10 GB to decode. Here every image is first judged by its
PNG header alone (signature, IHDR, dimensions against a pixel budget, bit depth and colour
type against what its pass must be), and only then decoded with Pillow, with Pillow's own
decompression-bomb limit as a second guard. Pure: bytes in, arrays and problem strings out.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from synth_contract.validation import one_line

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

MAX_PIXELS = 8192 * 8192
"""Largest image (width x height) decoded; a bigger one is a problem, judged from its header alone."""

COLOR_TYPES = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale+alpha", 6: "RGBA"}


@dataclass(frozen=True)
class PassFormat:
    """What a pass's PNG must be: allowed colour types and bit depths."""

    what: str
    color_types: frozenset[int]
    bit_depths: frozenset[int]


PASS_FORMATS: dict[str, PassFormat] = {
    "png": PassFormat("8-bit RGB", frozenset({2, 6}), frozenset({8})),
    "depth.png": PassFormat("16-bit single channel", frozenset({0}), frozenset({16})),
    "seg.png": PassFormat("8- or 16-bit single channel", frozenset({0}), frozenset({8, 16})),
    "normals.png": PassFormat("8- or 16-bit RGB", frozenset({2, 6}), frozenset({8, 16})),
}
"""Tar member extension -> the format the data contract gives it (docs/ARCHITECTURE.md, "Fixed names")."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int


def png_header(data: bytes) -> PngHeader | str:
    """The IHDR of a PNG, or why ``data`` is not a PNG at all."""
    if data[:8] != PNG_SIGNATURE:
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return "is a GIF, not a PNG"
        if data[:3] == b"\xff\xd8\xff":
            return "is a JPEG, not a PNG"
        return "is not a PNG (no PNG signature)"
    if len(data) < 33 or data[12:16] != b"IHDR":
        return "is a truncated PNG (no IHDR chunk)"
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        return "has a corrupt PNG header (IHDR checksum mismatch)"
    return PngHeader(int(width), int(height), int(depth), int(ctype))


def decode_png(data: bytes, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray | None, PngHeader | None, str | None]:
    """(pixels, header, problem): the image decoded, or why it cannot be (nothing decoded then)."""
    header = png_header(data)
    if isinstance(header, str):
        return None, None, header
    if header.width == 0 or header.height == 0:
        return None, header, f"is empty ({header.width}x{header.height})"
    if header.width * header.height > max_pixels:
        return None, header, (f"is {header.width}x{header.height}, more than the {max_pixels:,} pixels "
                              "allowed: not decoded (a decompression bomb or a wrong size)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
                img.load()
                arr = np.asarray(img)
    except (OSError, SyntaxError, ValueError, zlib.error, EOFError, Image.DecompressionBombWarning,
            Image.DecompressionBombError, MemoryError) as exc:
        return None, header, f"cannot be decoded: {one_line(exc, 200)}"
    return arr, header, None


def _size_of(meta: dict[str, Any]) -> tuple[int, int] | None:
    render = meta.get("render")
    if not isinstance(render, dict):
        return None
    w, h = render.get("width"), render.get("height")
    if isinstance(w, int) and isinstance(h, int) and not isinstance(w, bool) and not isinstance(h, bool):
        return w, h
    return None


def sample_image_problems(
    key: str, members: dict[str, bytes], meta: dict[str, Any] | None, *, max_pixels: int = MAX_PIXELS
) -> list[str]:
    """What is wrong with a sample's images: each decodes, has its pass's format, the sizes agree
    with each other and the metadata, and the segmentation ids are exactly the ``objects`` ids."""
    problems: list[str] = []
    sizes: dict[str, tuple[int, int]] = {}
    seg: np.ndarray | None = None
    for ext, fmt in PASS_FORMATS.items():
        if ext not in members:
            continue
        name = f"{key}.{ext}"
        arr, header, problem = decode_png(members[ext], max_pixels=max_pixels)
        if header is not None:
            sizes[ext] = (header.width, header.height)
            if header.color_type not in fmt.color_types or header.bit_depth not in fmt.bit_depths:
                problems.append(f"{name} is {header.bit_depth}-bit "
                                f"{COLOR_TYPES.get(header.color_type, f'colour type {header.color_type}')}, "
                                f"the {ext} pass must be {fmt.what}")
        if problem is not None:
            problems.append(f"{name} {problem}")
            continue
        if ext == "seg.png" and arr is not None and arr.ndim == 2:
            seg = arr
    want = _size_of(meta) if isinstance(meta, dict) else None
    for ext, size in sizes.items():
        if want is not None and size != want:
            problems.append(f"{key}.{ext} is {size[0]}x{size[1]}, the metadata says {want[0]}x{want[1]}")
        elif want is None and "png" in sizes and size != sizes["png"]:
            problems.append(f"{key}.{ext} is {size[0]}x{size[1]}, the rgb image is {sizes['png'][0]}x{sizes['png'][1]}")
    if seg is not None and isinstance(meta, dict) and isinstance(meta.get("objects"), list):
        problems += _seg_problems(key, seg, meta["objects"])
    return problems


def _seg_problems(key: str, seg: np.ndarray, objects: list[Any]) -> list[str]:
    in_mask = {int(v) for v in np.unique(seg)} - {0}
    listed = {o["id"] for o in objects if isinstance(o, dict) and isinstance(o.get("id"), int)}
    out = []
    extra = sorted(in_mask - listed)
    if extra:
        out.append(f"{key}.seg.png has ids {_few(extra)} that are not in objects")
    empty = sorted(listed - in_mask)
    if empty:
        out.append(f"objects {_few(empty)} have no pixels in {key}.seg.png")
    return out


def _few(ids: list[int]) -> str:
    return str(ids) if len(ids) <= 8 else f"{ids[:8]} (+{len(ids) - 8} more)"
