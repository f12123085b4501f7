"""The per-sample quality gate: measure a rendered sample, then judge it against thresholds.

Pure numpy, no Blender. ``measure`` turns the rendered arrays into a few physical figures
(noise level, exposure, clipping, per-object visible pixels, mask consistency, non-finite
values); ``judge`` turns figures into components in [0, 1], a score and the reasons a sample
fails. A sample passes when it has no failure reason and its score reaches ``quality.minScore``.

Figures and why they catch what they catch (the calibration is in docs/quality.md):

- ``noiseSigma``: the standard deviation of pixel noise on luminance in [0, 1], estimated from
  the image alone: the median absolute response of the 3x3 Laplacian (which cancels smooth
  shading and, through the median, ignores the minority of pixels on edges), scaled so that
  white Gaussian noise of std s reads s. Clean renders read < 0.03, pure RGB noise ~0.2.
  With the camera sensor model on (``render.sensor``) the image carries noise on purpose: the
  gate is told the noise the sensor meant to add (``sensor.expectedNoiseSigma``) and judges the
  excess only, ``sqrt(max(measured**2 - intended**2, 0))`` (``excessNoiseSigma``), so sensor noise
  passes and a broken render (fireflies, an unconverged or pure-noise frame) still fails.
- ``mean``, ``clippedDark``, ``clippedBright``: mean luminance and the shares of pixels crushed
  to black (< 1/255) or burnt to white (> 254/255).
- per labelled object: visible pixels (segmentation) and, when the renderer supplies it, its
  ``visibleFraction``. An object counts as visible only with at least ``minObjectPixels``
  pixels and ``minVisibleFraction``; a sample needs at least one visible object.
- ``maskProblems``: ids in the mask that are not objects of the scene, labelled pixels where the
  depth pass has no surface, a mask that is mostly boundary (``maskBoundary``: share of labelled
  pixels with a 4-neighbour of another id; a noise-like mask reads ~1), boxes or pixel counts
  in the metadata that differ from the mask.
- ``nonFinite``: passes holding NaN or infinity (depth is allowed its background value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synth_render.simulation import VOLUME_CLASSES

_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_MAD_TO_SIGMA = 1.4826 / 6.0
"""A 3x3 Laplacian [[1,-2,1],[-2,4,-2],[1,-2,1]] has L2 norm 6; MAD of a normal is 0.6745 sigma."""
BACKGROUND_DEPTH = 1e9


@dataclass(frozen=True)
class Thresholds:
    """Where the gate draws its lines (calibrated on rendered data: docs/quality.md)."""

    max_noise_sigma: float = 0.06
    """Fail above this estimated noise std (luminance 0..1); the component is 1 below half of it."""
    min_mean: float = 0.02
    """Fail when the mean luminance is below this (black frame)."""
    max_mean: float = 0.95
    """Fail when the mean luminance is above this (white frame)."""
    max_clipped: float = 0.4
    """Fail when more than this share of pixels is crushed to black or burnt to white."""
    min_object_pixels: int = 16
    """An object with fewer visible pixels is not visible (not a label a model can learn)."""
    min_visible_fraction: float = 0.05
    """An object whose visible share of its unoccluded, uncropped projection is lower is not visible."""
    max_mask_boundary: float = 0.92
    """Fail when more than this share of labelled pixels touches another id (a noise-like mask reads
    0.94 with two ids, 0.99 with three; clean 64 px renders of small objects reach 0.85)."""
    max_unsupported: float = 0.02
    """Fail when more than this share of labelled pixels has no depth surface."""


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Measures:
    """What ``measure`` found in one sample (plain figures, before any judgement)."""

    noise_sigma: float
    mean: float
    std: float
    entropy_bits: float
    clipped_dark: float
    clipped_bright: float
    foreground: float
    object_pixels: dict[int, int]
    visible_fractions: dict[int, float]
    expected_objects: int
    mask_boundary: float
    mask_problems: tuple[str, ...]
    non_finite: tuple[str, ...]
    caption_problems: tuple[str, ...] = ()
    intended_noise_sigma: float = 0.0
    """The noise the camera sensor model added on purpose (0: none)."""

    @property
    def excess_noise_sigma(self) -> float:
        """The measured noise beyond the intended sensor noise (what the gate judges)."""
        return float(np.sqrt(max(self.noise_sigma ** 2 - self.intended_noise_sigma ** 2, 0.0)))


@dataclass(frozen=True)
class QualityReport:
    """The gate's verdict on one sample: every component, the score and why it fails."""

    score: float
    noise: float
    exposure: float
    clipping: float
    contrast: float
    entropy: float
    coverage: float
    visibility: float
    masks: float
    nan: bool
    noise_sigma: float
    mean: float
    clipped: float
    visible_objects: int
    expected_objects: int
    reasons: tuple[str, ...] = field(default=())
    visible: dict[int, bool] = field(default_factory=dict)
    intended_noise_sigma: float = 0.0
    excess_noise_sigma: float = 0.0

    @property
    def ok(self) -> bool:
        """No failure reason (the score still has to reach ``minScore``)."""
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        """The JSON form in the sample's metadata (camelCase, rounded)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if k == "visible":
                continue
            name = "".join(w.capitalize() if i else w for i, w in enumerate(k.split("_")))
            out[name] = round(v, 4) if isinstance(v, float) else list(v) if isinstance(v, tuple) else v
        return out


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at ``lo``, 1 at ``hi`` (either order), clamped."""
    if hi == lo:
        return 1.0
    return float(min(max((x - lo) / (hi - lo), 0.0), 1.0))


def luminance(rgb8: np.ndarray) -> np.ndarray:
    """Relative luminance in [0, 1] of an 8-bit sRGB image (H, W, 3), as float32."""
    return np.asarray(rgb8[..., :3].astype(np.float32) @ _LUMA / 255.0, dtype=np.float32)


def noise_sigma(lum: np.ndarray) -> float:
    """Robust noise std of an image: MAD of its 3x3 Laplacian response, in the image's units."""
    if lum.shape[0] < 3 or lum.shape[1] < 3:
        return 0.0
    x = lum.astype(np.float32)
    c = x[1:-1, 1:-1]
    lap = (x[:-2, :-2] + x[:-2, 2:] + x[2:, :-2] + x[2:, 2:]
           - 2 * (x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:]) + 4 * c)
    return float(np.median(np.abs(lap)) * _MAD_TO_SIGMA)


def mask_boundary(seg: np.ndarray) -> float:
    """Share of labelled pixels with a 4-neighbour carrying another id (0 when nothing is labelled)."""
    fg = seg > 0
    n = int(fg.sum())
    if n == 0:
        return 0.0
    edge = np.zeros(seg.shape, dtype=bool)
    dx = seg[:, 1:] != seg[:, :-1]
    dy = seg[1:, :] != seg[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return float((edge & fg).sum() / n)


def _mask_problems(seg: np.ndarray, counts: dict[int, int], scene_ids: Sequence[int], depth: np.ndarray | None,
                   objects: Sequence[Mapping[str, Any]] | None, thresholds: Thresholds) -> list[str]:
    problems = []
    unknown = sorted(set(counts) - set(scene_ids))
    if unknown:
        problems.append(f"mask has ids {unknown[:5]} that are not objects of the scene")
    fg = seg > 0
    n = int(fg.sum())
    if depth is not None and n:
        bad = fg & ~(np.isfinite(depth) & (depth > 0) & (depth < BACKGROUND_DEPTH))
        volumes = [int(o["id"]) for o in objects or () if isinstance(o, Mapping) and o.get("class") in VOLUME_CLASSES]
        if volumes:  # smoke/fire are labelled by optical depth (synth_render.simulation): sky may be behind
            bad &= ~np.isin(seg, volumes)
        share = float(bad.sum() / n)
        if share > thresholds.max_unsupported:
            problems.append(f"{share:.0%} of labelled pixels have no surface in the depth pass")
    if objects is not None:
        listed = {int(o["id"]): o for o in objects if isinstance(o, Mapping) and isinstance(o.get("id"), int)}
        if set(listed) != set(counts):
            problems.append(f"objects {sorted(listed)[:8]} do not match the mask ids {sorted(counts)[:8]}")
        for oid, obj in listed.items():
            if oid not in counts:
                continue
            ys, xs = np.nonzero(seg == oid)
            box = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
            if list(obj.get("bbox", box)) != box:
                problems.append(f"object {oid}: bbox {obj.get('bbox')} but its mask spans {box}")
            if "pixels" in obj and int(obj["pixels"]) != counts[oid]:
                problems.append(f"object {oid}: {obj['pixels']} pixels listed, {counts[oid]} in the mask")
    return problems


def measure(
    rgb8: np.ndarray,
    seg: np.ndarray,
    *,
    scene_ids: Sequence[int],
    depth: np.ndarray | None = None,
    passes: Mapping[str, np.ndarray] | None = None,
    objects: Sequence[Mapping[str, Any]] | None = None,
    visible_fractions: Mapping[int, float] | None = None,
    caption: str | None = None,
    caption_check: Callable[[str, Sequence[Mapping[str, Any]]], list[str]] | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    intended_noise_sigma: float = 0.0,
) -> Measures:
    """The figures of one sample: 8-bit RGB (H, W, 3), id mask (H, W), optional depth and passes.

    ``passes`` are the raw float passes to scan for NaN/inf (``depth`` may hold its background
    value); ``objects`` the metadata's object list to cross-check against the mask.
    """
    if rgb8.dtype != np.uint8 or rgb8.ndim != 3:
        raise ValueError(f"rgb must be uint8 (H, W, 3), got {rgb8.dtype} {rgb8.shape}")
    lum = luminance(rgb8)
    hist = np.bincount(np.round(lum * 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    ids, n = np.unique(seg, return_counts=True)
    counts = {int(i): int(c) for i, c in zip(ids, n, strict=True) if i != 0}
    non_finite = tuple(sorted(name for name, arr in (passes or {}).items()
                              if arr.dtype.kind == "f" and not np.isfinite(arr).all()))
    caption_problems: tuple[str, ...] = ()
    if caption_check is not None and caption is not None:
        caption_problems = tuple(caption_check(caption, list(objects or ())))
    return Measures(
        noise_sigma=noise_sigma(lum), mean=float(lum.mean()), std=float(lum.std()),
        entropy_bits=float(-(p * np.log2(p)).sum()),
        clipped_dark=float(hist[0] / hist.sum()), clipped_bright=float(hist[255] / hist.sum()),
        foreground=float((seg > 0).mean()), object_pixels=counts,
        visible_fractions={int(k): float(v) for k, v in (visible_fractions or {}).items()},
        expected_objects=len(scene_ids), mask_boundary=mask_boundary(seg),
        mask_problems=tuple(_mask_problems(seg, counts, scene_ids, depth, objects, thresholds)),
        non_finite=non_finite, caption_problems=caption_problems, intended_noise_sigma=float(intended_noise_sigma),
    )


def judge(m: Measures, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> QualityReport:
    """Components, score and failure reasons from a sample's figures."""
    t = thresholds
    reasons: list[str] = []
    excess = m.excess_noise_sigma
    noise = _ramp(excess, t.max_noise_sigma, t.max_noise_sigma / 2)
    if excess > t.max_noise_sigma:
        beyond = f" ({excess:.3f} beyond the sensor's intended {m.intended_noise_sigma:.3f})" \
            if m.intended_noise_sigma else ""
        reasons.append(f"noise: estimated sigma {m.noise_sigma:.3f}{beyond} > {t.max_noise_sigma}")
    exposure = min(_ramp(m.mean, t.min_mean, t.min_mean + 0.1), _ramp(m.mean, t.max_mean, t.max_mean - 0.15))
    if m.mean < t.min_mean:
        reasons.append(f"exposure: mean luminance {m.mean:.3f} < {t.min_mean} (black frame)")
    elif m.mean > t.max_mean:
        reasons.append(f"exposure: mean luminance {m.mean:.3f} > {t.max_mean} (white frame)")
    clipped = m.clipped_dark + m.clipped_bright
    clipping = _ramp(clipped, t.max_clipped, t.max_clipped / 4)
    if clipped > t.max_clipped:
        side = "black" if m.clipped_dark >= m.clipped_bright else "white"
        reasons.append(f"clipping: {clipped:.0%} of pixels clipped (mostly {side}) > {t.max_clipped:.0%}")
    contrast = _ramp(m.std, 0.0, 0.12)
    entropy = _ramp(m.entropy_bits, 1.0, 5.0)
    coverage = min(_ramp(m.foreground, 0.0, 0.05), _ramp(m.foreground, 1.0, 0.9))
    visible = {oid: n >= t.min_object_pixels and m.visible_fractions.get(oid, 1.0) >= t.min_visible_fraction
               for oid, n in m.object_pixels.items()}
    n_visible = sum(visible.values())
    visibility = n_visible / m.expected_objects if m.expected_objects else 1.0
    if n_visible == 0:
        small = max(m.object_pixels.values(), default=0)
        reasons.append(f"visibility: no labelled object has >= {t.min_object_pixels} visible pixels "
                       f"and >= {t.min_visible_fraction:.0%} visible (largest: {small} px)")
    problems = list(m.mask_problems)
    if m.mask_boundary > t.max_mask_boundary:
        problems.append(f"{m.mask_boundary:.0%} of labelled pixels are on a boundary (noise-like mask)")
    masks = 0.0 if problems else 1.0
    reasons += [f"mask: {p}" for p in problems]
    reasons += [f"non-finite values (NaN/inf) in pass {name}" for name in m.non_finite]
    reasons += [f"caption: {p}" for p in m.caption_problems]
    # Soft figures make the score; each hard figure can take it to 0 on its own.
    total = 0.3 * contrast + 0.3 * entropy + 0.4 * coverage
    total *= (0.5 + 0.5 * visibility) * min(noise, exposure, clipping, 1.0 if n_visible else 0.0, masks)
    if m.non_finite:
        total = 0.0
    return QualityReport(
        score=round(float(total), 4), noise=noise, exposure=exposure, clipping=clipping, contrast=contrast,
        entropy=entropy, coverage=coverage, visibility=visibility, masks=masks, nan=bool(m.non_finite),
        noise_sigma=m.noise_sigma, mean=m.mean, clipped=clipped, visible_objects=n_visible,
        expected_objects=m.expected_objects, reasons=tuple(reasons), visible=visible,
        intended_noise_sigma=m.intended_noise_sigma, excess_noise_sigma=excess,
    )


def score(rgb: np.ndarray, seg: np.ndarray, *, expected_objects: int, has_nan: bool = False,
          thresholds: Thresholds = DEFAULT_THRESHOLDS) -> QualityReport:
    """Score an image and its id mask when only the object count is known (ids 1..expected_objects)."""
    passes = {"rgb": np.array([np.nan], np.float32)} if has_nan else None
    m = measure(rgb, seg, scene_ids=range(1, expected_objects + 1), passes=passes, thresholds=thresholds)
    return judge(m, thresholds)


def thresholds_for(spec_quality: Any) -> Thresholds:
    """The thresholds of a dataset: the defaults, overridden by any the spec's ``quality`` sets."""
    overrides = {name: getattr(spec_quality, name) for name in Thresholds.__dataclass_fields__
                 if getattr(spec_quality, name, None) is not None}
    return Thresholds(**overrides) if overrides else DEFAULT_THRESHOLDS


def assess(out: Any, rgb8: np.ndarray, seg: np.ndarray, *, scene_ids: Sequence[int],
           objects: Sequence[Mapping[str, Any]] | None = None, caption: str | None = None,
           caption_check: Callable[[str, Sequence[Mapping[str, Any]]], list[str]] | None = None,
           thresholds: Thresholds = DEFAULT_THRESHOLDS,
           visible_fractions: Mapping[int, float] | None = None,
           intended_noise_sigma: float = 0.0) -> QualityReport:
    """Gate a renderer's output (``rgb``/``depth``/``normals`` float arrays) and its encodings.

    Depth may hold its background value (>= 1e9); normals are only checked where a surface was
    hit; ``out.visible_fractions`` (id -> share of the object left visible), when the renderer
    provides it, feeds the per-object visibility rule.
    """
    depth = np.asarray(out.depth)
    surface = np.isfinite(depth) & (depth > 0) & (depth < BACKGROUND_DEPTH)
    passes: dict[str, np.ndarray] = {"rgb": np.asarray(out.rgb),
                                     "depth": np.where(depth >= BACKGROUND_DEPTH, 0.0, depth)}
    normals = getattr(out, "normals", None)
    if normals is not None:
        passes["normals"] = np.asarray(normals)[surface]
    m = measure(rgb8, seg, scene_ids=scene_ids, depth=depth, passes=passes, objects=objects,
                visible_fractions=visible_fractions if visible_fractions is not None
                else getattr(out, "visible_fractions", None), caption=caption,
                caption_check=caption_check, thresholds=thresholds, intended_noise_sigma=intended_noise_sigma)
    return judge(m, thresholds)


def gate_metadata(meta: dict[str, Any], out: Any, rgb8: np.ndarray, seg: np.ndarray, *, scene_ids: Sequence[int],
                  thresholds: Thresholds = DEFAULT_THRESHOLDS) -> QualityReport:
    """Gate one attempt and record the verdict in its metadata (in place).

    Reads each object's ``visibleFraction`` when the ground truth put one there, marks every
    object ``visible`` (enough pixels and visible share: a label a model can learn) and sets
    ``meta['quality']`` to every component, the score and the failure reasons.
    """
    objects = [o for o in meta.get("objects", []) if isinstance(o, dict)]
    fractions = {int(o["id"]): float(o["visibleFraction"]) for o in objects
                 if isinstance(o.get("visibleFraction"), int | float)}
    sensor = meta.get("sensor")
    intended = float(sensor.get("expectedNoiseSigma", 0.0)) if isinstance(sensor, dict) else 0.0
    report = assess(out, rgb8, seg, scene_ids=scene_ids, objects=objects, thresholds=thresholds,
                    visible_fractions=fractions or None, intended_noise_sigma=intended)
    for o in objects:
        o["visible"] = report.visible.get(int(o["id"]), False)
    meta["quality"] = report.as_dict()
    return report


def caption_verdict(meta: dict[str, Any]) -> list[str]:
    """Fold the caption check of the kept attempt (``meta['captionCheck']``) into its verdict."""
    problems = meta.get("captionCheck")
    if not isinstance(problems, list) or not problems:
        return []
    q = meta["quality"]
    q["reasons"] = [*q.get("reasons", []), *(f"caption: {p}" for p in problems)]
    q["passed"] = False
    return [str(p) for p in problems]
