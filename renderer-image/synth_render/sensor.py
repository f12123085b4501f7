"""A camera sensor model: what a real camera does to the ideal render, with the labels kept aligned.

Pure numpy and OpenCV, no Blender. Per sample (seeded, ``render.sensor`` gives the ranges) the
linear render goes through, in the order a camera applies them:

1. the lens: Brown-Conrady distortion ``k1, k2, p1, p2`` (OpenCV's model, normalised
   coordinates) with lateral chromatic aberration (red and blue magnified by ``1 +- ca``) and
   vignetting (brightness ``1 - v * r^2``, ``r`` = 1 at the corners);
2. exposure (a gain of ``2**stops``) and sensor noise on linear values (Gaussian with variance
   ``shot * value + read**2``: photon shot noise plus read noise);
3. white balance (red and blue gains), the sRGB transfer and 8 bits, then JPEG re-compression.

The output camera keeps the render's principal point and is zoomed by ``zoom >= 1`` so that every
output pixel sees rendered content (barrel distortion would otherwise show black corners); the
sample JSON's ``camera.intrinsics`` is that output camera and ``camera.distortion`` its
coefficients, so ``cv2.projectPoints(X, rvec, tvec, K, (k1, k2, p1, p2))`` lands on the image.
Every label pass (ids, depth, normals, albedo, flow, amodal maps) is warped with the same map,
nearest-neighbour, so ids stay ids and boxes and masks follow the image. Every parameter is in
the sample JSON under ``sensor``; :func:`params_from_record` reads them back.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from PIL import Image

from synth_render import post

cv2.setNumThreads(1)  # one thread: figures that do not depend on the core count, no contention with Blender

MODEL = "parallel-synth/sensor/v1"
_LUMA = np.array([0.2126, 0.7152, 0.0722])
_GRID = 16
"""The distortion map is solved every ``_GRID`` pixels and interpolated (it is smooth)."""


@dataclass(frozen=True)
class SensorParams:
    """One sample's sensor, as drawn (every field is recorded in the sample JSON)."""

    seed: int
    exposure: float
    """Stops."""
    wb_red: float
    wb_blue: float
    k1: float
    k2: float
    p1: float
    p2: float
    vignetting: float
    shot: float
    read: float
    ca: float
    jpeg_quality: int
    """0: no JPEG re-compression."""

    @property
    def dist(self) -> np.ndarray:
        return np.array([self.k1, self.k2, self.p1, self.p2], dtype=np.float64)


def _u(rng: np.random.Generator, x: float) -> float:
    return round(float(rng.uniform(-x, x)), 6) + 0.0 if x > 0 else 0.0


def draw(spec: Any, seed: int) -> SensorParams:
    """The sensor of the sample with this (render) seed, within the ranges of ``render.sensor``."""
    rng = np.random.default_rng([seed & 0xFFFFFFFFFFFF, 0x5E5503])
    d, n, q = spec.distortion, spec.noise, spec.jpeg_quality
    return SensorParams(
        seed=int(seed), exposure=_u(rng, spec.exposure),
        wb_red=round(1.0 + _u(rng, spec.white_balance), 6), wb_blue=round(1.0 + _u(rng, spec.white_balance), 6),
        k1=_u(rng, d.k1), k2=_u(rng, d.k2), p1=_u(rng, d.p1), p2=_u(rng, d.p2),
        vignetting=round(float(rng.uniform(0.0, spec.vignetting)), 6),
        shot=round(float(rng.uniform(0.0, n.shot)), 7), read=round(float(rng.uniform(0.0, n.read)), 7),
        ca=_u(rng, spec.chromatic_aberration),
        jpeg_quality=int(rng.integers(q.min, q.max + 1)) if q.max > 0 else 0,
    )


def record(p: SensorParams, *, zoom: float, expected_noise: float) -> dict[str, Any]:
    """The sample JSON's ``sensor`` object."""
    return {"model": MODEL, "applied": True, "seed": p.seed, "exposureStops": p.exposure,
            "whiteBalance": {"red": p.wb_red, "blue": p.wb_blue},
            "distortion": {"k1": p.k1, "k2": p.k2, "p1": p.p1, "p2": p.p2}, "vignetting": p.vignetting,
            "noise": {"shot": p.shot, "read": p.read}, "chromaticAberration": p.ca, "jpegQuality": p.jpeg_quality,
            "zoom": round(zoom, 6), "expectedNoiseSigma": round(expected_noise, 6)}


def params_from_record(rec: dict[str, Any]) -> SensorParams:
    """The parameters a sample's ``sensor`` JSON records (the inverse of :func:`record`)."""
    d = rec["distortion"]
    return SensorParams(seed=int(rec["seed"]), exposure=float(rec["exposureStops"]),
                        wb_red=float(rec["whiteBalance"]["red"]), wb_blue=float(rec["whiteBalance"]["blue"]),
                        k1=float(d["k1"]), k2=float(d["k2"]), p1=float(d["p1"]), p2=float(d["p2"]),
                        vignetting=float(rec["vignetting"]), shot=float(rec["noise"]["shot"]),
                        read=float(rec["noise"]["read"]), ca=float(rec["chromaticAberration"]),
                        jpeg_quality=int(rec["jpegQuality"]))


# --------------------------------------------------------------------------- geometry


def _cv(k: np.ndarray) -> np.ndarray:
    """Our intrinsics (pixel centres at half-integers) in OpenCV's convention (centres at integers)."""
    c = np.array(k, dtype=np.float64)
    c[0, 2] -= 0.5
    c[1, 2] -= 0.5
    return c


def _undistort(uv: np.ndarray, k_out: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Normalised ideal coordinates (N, 2) of distorted output pixels ``uv`` (our convention)."""
    pts = (uv - 0.5).reshape(-1, 1, 2).astype(np.float64)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
    eye = np.eye(3)
    return np.asarray(cv2.undistortPointsIter(pts, _cv(k_out), dist, eye, eye, crit)).reshape(-1, 2)


def distort_points(xy: np.ndarray, k_out: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) (our convention) of normalised ideal coordinates ``xy`` (N, 2) through the lens."""
    x, y = xy[:, 0], xy[:, 1]
    k1, k2, p1, p2 = (float(v) for v in dist)
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([k_out[0, 0] * xd + k_out[0, 2], k_out[1, 1] * yd + k_out[1, 2]], axis=1)


def project(points_cam: np.ndarray, k_out: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) of camera-frame points (N, 3, OpenCV axes) through the distorted output camera."""
    p = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
    return distort_points(p[:, :2] / p[:, 2:3], k_out, dist)


def _border(width: int, height: int, n: int = 32) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)
    xs, ys = t * width, t * height
    return np.concatenate([np.stack([xs, np.zeros(n)], 1), np.stack([xs, np.full(n, height)], 1),
                           np.stack([np.zeros(n), ys], 1), np.stack([np.full(n, width), ys], 1)])


def output_camera(k: np.ndarray, dist: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """The output intrinsics (the render's zoomed by ``zoom >= 1``) whose every pixel sees the render."""
    zoom = 1.0
    border = _border(width, height)
    for _ in range(6):
        k_out = np.array(k, dtype=np.float64)
        k_out[0, 0] *= zoom
        k_out[1, 1] *= zoom
        src = _undistort(border, k_out, dist)
        over = max(float(np.abs(src[:, 0]).max() * k[0, 0] / (width / 2)),
                   float(np.abs(src[:, 1]).max() * k[1, 1] / (height / 2)))
        if over <= 1.0 + 1e-6:
            break
        zoom *= over * 1.0005
    return k_out, zoom


def source_map(k: np.ndarray, k_out: np.ndarray, dist: np.ndarray, width: int,
               height: int) -> tuple[np.ndarray, np.ndarray]:
    """For every output pixel, where it samples the ideal render (OpenCV remap maps, float32)."""
    gw, gh = width // _GRID + 2, height // _GRID + 2
    gx, gy = np.meshgrid(np.arange(gw) * _GRID + 0.5, np.arange(gh) * _GRID + 0.5)
    xy = _undistort(np.stack([gx.ravel(), gy.ravel()], 1), k_out, dist)
    su = (k[0, 0] * xy[:, 0] + k[0, 2] - 0.5).reshape(gh, gw)
    sv = (k[1, 1] * xy[:, 1] + k[1, 2] - 0.5).reshape(gh, gw)
    # Grid node j sits at output pixel j * _GRID: interpolate the nodes at every pixel index.
    px, py = np.meshgrid(np.arange(width, dtype=np.float32) / _GRID, np.arange(height, dtype=np.float32) / _GRID)
    mu = cv2.remap(su.astype(np.float32), px, py, cv2.INTER_LINEAR)
    mv = cv2.remap(sv.astype(np.float32), px, py, cv2.INTER_LINEAR)
    return mu, mv


def warp_label(a: np.ndarray, mu: np.ndarray, mv: np.ndarray) -> np.ndarray:
    """A label pass warped nearest-neighbour (ids stay ids; outside the render: the edge value)."""
    src = np.ascontiguousarray(a)
    dtype = src.dtype
    work = src.astype(np.float32) if dtype not in (np.float32, np.uint8, np.uint16) else src
    if work.ndim == 3 and work.shape[2] > 4:
        out = np.stack([cv2.remap(work[..., i], mu, mv, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
                        for i in range(work.shape[2])], axis=-1)
    else:
        out = cv2.remap(work, mu, mv, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out.reshape(src.shape), dtype=dtype)


# --------------------------------------------------------------------------- photometry


@lru_cache(maxsize=16)
def _falloff(width: int, height: int) -> np.ndarray:
    """Squared distance from the image centre, 1 at the corners (float32, cached per size)."""
    yy, xx = np.ogrid[:height, :width]
    r2 = ((xx + 0.5 - width / 2) ** 2 + (yy + 0.5 - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
    out = np.asarray(r2, dtype=np.float32)
    out.setflags(write=False)
    return out


def _lens(rgb: np.ndarray, mu: np.ndarray, mv: np.ndarray, p: SensorParams, k: np.ndarray) -> np.ndarray:
    """Distortion (all channels through the green map), red and blue magnified by ``1 +- ca``, vignetting, exposure."""
    out = np.asarray(cv2.remap(rgb, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), dtype=np.float32)
    if p.ca:
        cx, cy = float(k[0, 2]) - 0.5, float(k[1, 2]) - 0.5
        for c, scale in ((0, 1.0 + p.ca), (2, 1.0 - p.ca)):
            a = np.float32(1.0 / scale)
            ux, vy = mu * a + np.float32(cx * (1 - a)), mv * a + np.float32(cy * (1 - a))
            out[..., c] = cv2.remap(np.ascontiguousarray(rgb[..., c]), ux, vy, cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
    h, w = mu.shape
    gain = (1.0 - np.float32(p.vignetting) * _falloff(w, h)) * np.float32(2.0 ** p.exposure)
    out *= gain[..., None]
    return out


@lru_cache(maxsize=1)
def _gauss_table() -> np.ndarray:
    """65536 standard-normal quantiles: noise is a table lookup of seeded 16-bit integers (fast, exact)."""
    from statistics import NormalDist

    q = (np.arange(65536, dtype=np.float64) + 0.5) / 65536
    nd = NormalDist()
    out = np.array([nd.inv_cdf(float(v)) for v in q], dtype=np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def _srgb_table() -> np.ndarray:
    """8-bit sRGB of linear values i / 65535 (``post.linear_to_srgb8``, as a lookup table)."""
    lut = post.linear_to_srgb8(np.arange(65536, dtype=np.float64).reshape(1, -1, 1) / 65535.0).reshape(-1)
    lut.setflags(write=False)
    return lut


def _to_srgb8(lin: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """8-bit sRGB of linear RGB times per-channel ``gains`` (white balance)."""
    x = np.multiply(lin, gains * np.float32(65535.0))
    np.clip(x, 0.0, 65535.0, out=x)
    x += np.float32(0.5)
    return np.take(_srgb_table(), x.astype(np.uint16))


def _srgb_slope(x: np.ndarray) -> np.ndarray:
    xc = np.clip(x, 1e-6, None)
    return np.where(x >= 1.0, 0.0, np.where(xc <= 0.0031308, 12.92, 1.055 / 2.4 * np.power(xc, 1 / 2.4 - 1)))


def expected_noise_sigma(linear: np.ndarray, p: SensorParams) -> float:
    """The noise std the quality gate should read on luminance (0..1 sRGB) from the intended noise.

    Propagates ``sqrt(shot * x + read**2)`` per channel through the white-balance gains and the
    sRGB slope at each pixel, combines the channels with the luminance weights and takes the
    median over (a grid of) pixels, as the gate's median-based estimator does.
    """
    x = np.asarray(linear[::8, ::8], dtype=np.float64).reshape(-1, 3)
    gains = np.array([p.wb_red, 1.0, p.wb_blue])
    sigma = np.sqrt(p.shot * np.clip(x, 0, None) + p.read ** 2) * gains
    per = np.sqrt(((_LUMA * _srgb_slope(x * gains) * sigma) ** 2).sum(axis=1))
    return float(np.median(per)) if per.size else 0.0


def _jpeg(rgb8: np.ndarray, quality: int) -> np.ndarray:
    if quality <= 0:
        return rgb8
    buf = io.BytesIO()
    Image.fromarray(rgb8).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8)


@dataclass(frozen=True)
class Sensed:
    """The sample's image and labels after the sensor, and what the sample JSON records of it."""

    out: Any
    """The renderer's output with every label pass warped (its ``rgb`` the sensor's linear image)."""
    rgb8: np.ndarray
    intrinsics: np.ndarray
    record: dict[str, Any]


_LABELS = ("depth", "index", "normals", "albedo", "roughness", "metallic", "flow")


def apply(p: SensorParams, out: Any, k: np.ndarray) -> Sensed:
    """Run the sensor on a render (``rendering.RenderOutput``) whose ideal camera is ``k``."""
    h, w = np.asarray(out.rgb).shape[:2]
    k_out, zoom = output_camera(k, p.dist, w, h)
    mu, mv = source_map(k, k_out, p.dist, w, h)
    lin = _lens(np.asarray(out.rgb, dtype=np.float32), mu, mv, p, k)
    expected = expected_noise_sigma(lin, p)
    rng = np.random.default_rng([p.seed & 0xFFFFFFFFFFFF, 0x901CE])
    sigma = np.sqrt(np.float32(p.shot) * lin + np.float32(p.read ** 2))  # lin >= 0: render, gains >= 0
    lin += sigma * np.take(_gauss_table(), rng.integers(0, 65536, size=lin.shape, dtype=np.uint16))
    gains = np.array([p.wb_red, 1.0, p.wb_blue], dtype=np.float32)
    rgb8 = _jpeg(_to_srgb8(lin, gains), p.jpeg_quality)
    lin *= gains
    warped = {name: warp_label(getattr(out, name), mu, mv) for name in _LABELS
              if getattr(out, name, None) is not None}
    amodal = tuple(warp_label(a, mu, mv) for a in getattr(out, "amodal", ()))
    new_out = dataclasses.replace(out, rgb=lin, amodal=amodal, **warped)
    return Sensed(out=new_out, rgb8=rgb8, intrinsics=k_out, record=record(p, zoom=zoom, expected_noise=expected))


def process(spec: Any, out: Any, k: np.ndarray, *, seed: int, single_view: bool) -> tuple[Any, np.ndarray,
                                                                                         Sensed | None]:
    """What ``sample`` calls: (output, 8-bit image, what was sensed) with the sensor on, else the plain encoding.

    Multi-view and sequence samples keep the ideal camera (their views and frames share one
    pinhole model and their flow is in ideal pixels).
    """
    if not getattr(spec, "enabled", False) or not single_view:
        return out, post.linear_to_srgb8(out.rgb), None
    sensed = apply(draw(spec, seed), out, k)
    return sensed.out, sensed.rgb8, sensed


def annotate(meta: dict[str, Any], sensed: Sensed | None, spec: Any) -> None:
    """``sensor`` in the sample JSON, and the output camera's intrinsics and distortion under ``camera``."""
    if sensed is None:
        if getattr(spec, "enabled", False):
            meta["sensor"] = {"model": MODEL, "applied": False,
                              "why": "multi-view and sequence samples keep the ideal pinhole camera"}
        return
    meta["sensor"] = sensed.record
    meta["camera"]["intrinsics"] = post.matrix_json(sensed.intrinsics)
    meta["camera"]["distortion"] = {"model": "brown-conrady (opencv k1, k2, p1, p2; normalised coordinates)",
                                    **sensed.record["distortion"]}


def box_outline(corners_cam: np.ndarray, k_out: np.ndarray, dist: np.ndarray, *, steps: int = 16) -> np.ndarray:
    """Pixels of points along the 12 edges of a 3D box (8 camera-frame corners): its distorted outline."""
    c = np.asarray(corners_cam, dtype=np.float64)
    edges = [(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1]
    t = np.linspace(0.0, 1.0, steps)[:, None]
    pts = np.concatenate([c[i] * (1 - t) + c[j] * t for i, j in edges])
    return project(pts[pts[:, 2] > 1e-6], k_out, dist)

