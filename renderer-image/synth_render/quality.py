"""The per-sample quality gate: a score in [0, 1] from the rendered arrays.

Pure numpy. Components (each in [0, 1]): exposure (mean brightness, clipped pixels), contrast
(luminance spread), entropy (histogram information), coverage (share of pixels on labelled
objects), visibility (share of the scene's objects that are visible at all). A NaN anywhere,
or no visible object, scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QualityReport:
    score: float
    exposure: float
    contrast: float
    entropy: float
    coverage: float
    visibility: float
    nan: bool

    def as_dict(self) -> dict[str, float | bool]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi`` (either order), clamped."""
    if hi == lo:
        return 1.0
    return float(min(max((x - lo) / (hi - lo), 0.0), 1.0))


def score(rgb: np.ndarray, seg: np.ndarray, *, expected_objects: int, has_nan: bool = False) -> QualityReport:
    """Score an 8-bit RGB image (H, W, 3) and its id mask (H, W) against the scene's object count."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3:
        raise ValueError(f"rgb must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    lum = (rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722) / 255.0
    mean = float(lum.mean())
    clipped = float(((lum < 0.01) | (lum > 0.99)).mean())
    exposure = min(_ramp(mean, 0.03, 0.18), _ramp(mean, 0.97, 0.8)) * (1.0 - clipped)
    contrast = _ramp(float(lum.std()), 0.0, 0.12)
    hist = np.bincount((lum * 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    entropy = _ramp(float(-(p * np.log2(p)).sum()), 1.0, 5.0)
    fg = float((seg > 0).mean())
    coverage = min(_ramp(fg, 0.0, 0.05), _ramp(fg, 1.0, 0.9))
    visible = len(np.unique(seg[seg > 0]))
    visibility = visible / expected_objects if expected_objects else 1.0
    total = 0.3 * exposure + 0.2 * contrast + 0.2 * entropy + 0.3 * coverage
    total *= 0.5 + 0.5 * visibility
    if has_nan or visible == 0:
        total = 0.0
    return QualityReport(score=round(float(total), 4), exposure=exposure, contrast=contrast, entropy=entropy,
                         coverage=coverage, visibility=visibility, nan=has_nan)
