"""Small PBR texture sets made with numpy (wood, tiles, concrete), for tests and examples.

Each set is a folder with the file names real libraries use, so the same loader serves both:
``wood`` and ``tiles`` follow ambientCG (``wood_Color.png``, ``wood_Roughness.png``,
``wood_NormalGL.png``, ``tiles_Metalness.png``), ``concrete`` follows Poly Haven
(``concrete_diff_1k.png``, ``concrete_rough_1k.png``, ``concrete_nor_dx_1k.png``). Nothing is
downloaded: the images are a few kilobytes each, deterministic for a given size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SETS = ("wood", "tiles", "concrete")


def _save(path: Path, a: np.ndarray) -> None:
    Image.fromarray(np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)).save(path, optimize=True)


def _normal_from_height(h: np.ndarray, strength: float, *, directx: bool = False) -> np.ndarray:
    gy, gx = np.gradient(h)
    n = np.stack([-gx * strength, (gy if directx else -gy) * strength, np.ones_like(h)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return (n + 1) / 2


def _noise(rng: np.random.Generator, size: int, octaves: int = 4) -> np.ndarray:
    """Smooth value noise in [0, 1], tileable (sums of upsampled random grids)."""
    out = np.zeros((size, size))
    for k in range(octaves):
        cells = 4 * 2**k
        grid = rng.random((cells, cells))
        img = np.asarray(Image.fromarray((grid * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)) / 255.0
        out += img / 2**k
    out -= out.min()
    return out / max(out.max(), 1e-9)


def write_texture_sets(root: Path, *, size: int = 64, seed: int = 0) -> list[str]:
    """Write the three sets under ``root`` (one folder each); returns their ids."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    # Wood: boards along x, grain from stretched noise, darker seams.
    d = root / "wood"
    d.mkdir(parents=True, exist_ok=True)
    boards = np.floor(y * 4)
    grain = _noise(rng, size)[:, ::1]
    grain = np.sin((y * 40 + grain * 6 + boards * 1.7) * np.pi) * 0.5 + 0.5
    seam = (np.abs(y * 4 - np.round(y * 4)) < 0.04).astype(float)
    tone = 0.75 + 0.25 * ((boards * 0.37) % 1.0)
    base = np.stack([0.55, 0.35, 0.18], axis=-1) * (tone * (0.75 + 0.25 * grain) * (1 - 0.6 * seam))[..., None]
    _save(d / "wood_Color.png", base)
    _save(d / "wood_Roughness.png", 0.45 + 0.2 * grain + 0.3 * seam)
    _save(d / "wood_NormalGL.png", _normal_from_height(grain * 0.3 - seam, 4.0))
    # Tiles: square ceramic tiles with grout lines, glossy tiles, rough grout.
    d = root / "tiles"
    d.mkdir(parents=True, exist_ok=True)
    grout = ((np.abs(x * 4 - np.round(x * 4)) < 0.05) | (np.abs(y * 4 - np.round(y * 4)) < 0.05)).astype(float)
    tint = 0.85 + 0.1 * _noise(rng, size, octaves=2)
    colour = np.stack([0.82, 0.84, 0.86], axis=-1) * tint[..., None] * (1 - grout[..., None]) \
        + np.array([0.35, 0.34, 0.32]) * grout[..., None]
    _save(d / "tiles_Color.png", colour)
    _save(d / "tiles_Roughness.png", 0.12 + 0.75 * grout)
    _save(d / "tiles_NormalGL.png", _normal_from_height(-grout, 3.0))
    _save(d / "tiles_Metalness.png", np.zeros((size, size)))
    # Concrete: grey mottling and pores (Poly Haven names, DirectX normal map).
    d = root / "concrete"
    d.mkdir(parents=True, exist_ok=True)
    mottle = _noise(rng, size, octaves=5)
    pores = (rng.random((size, size)) < 0.02).astype(float)
    grey = (0.42 + 0.2 * mottle - 0.2 * pores)[..., None] * np.array([1.0, 0.98, 0.95])
    _save(d / "concrete_diff_1k.png", grey)
    _save(d / "concrete_rough_1k.png", 0.8 + 0.15 * mottle)
    _save(d / "concrete_nor_dx_1k.png", _normal_from_height(mottle * 0.5 - pores, 3.0, directx=True))
    return list(SETS)
