"""Multi-view samples: where the N cameras of one scene go, and what each view writes.

Pure (no Blender). ``view_cameras`` turns the scene's own camera plus ``render.views`` into N
cameras; view 0 is always the scene's camera, so a multi-view sample's top-level files
(``{key}.png``, ``{key}.seg.png``, ...) are its view 0 and every single-view tool keeps working.
``annotate_views``/``add_files`` (hooks of ``sample.py``) encode the per-view passes as
``view{k:02d}.*`` members and build the ``views`` list of the sample JSON (intrinsics, extrinsics, objects with the same ids as the
top-level ``objects``: the id is the object's pass index, which does not depend on the camera).

Patterns (angles in degrees, azimuth about +Z through the look-at point):
- ``orbit``: azimuths ``360 k / N`` from view 0, at view 0's elevation (clamped into ``elevation``).
- ``arc``: azimuth offsets ``0, +d, -d, +2d, -2d, ...`` with ``d = spanDegrees / (N - 1)``, so the
  views cover ``spanDegrees`` around view 0 (symmetric for odd N).
- ``stereo``: a parallel rig: view k is view 0 moved ``k * baseline`` metres along its +x (right)
  axis, same orientation (rectified pairs: disparity = fx * baseline / depth).
- ``random``: seeded by the sample's render seed: azimuth uniform in [0, 360), elevation uniform in
  ``elevation`` (default view 0's elevation +-15), radius as for the others.
``radius`` (default view 0's distance to the look-at point) applies to views 1.. of orbit, arc
and random.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from synth_contract import classes
from synth_contract.passes import PASS_EXT
from synth_render import groundtruth, post
from synth_render.annotate import dataset_vocabulary
from synth_render.scene import Camera, Scene

PATTERNS = ("orbit", "arc", "stereo", "random")
MIN_ELEVATION, MAX_ELEVATION = -85.0, 85.0


@dataclass(frozen=True)
class ViewParams:
    """``render.views`` as plain values (the renderer does not depend on the pydantic model)."""

    count: int = 1
    pattern: str = "orbit"
    radius: float | None = None
    elevation: tuple[float, float] | None = None
    span_degrees: float = 90.0
    baseline: float = 0.1


def params_from_spec(views: Any) -> ViewParams:
    """``ViewParams`` from ``spec.render.views`` (a pydantic ``ViewsSpec`` or None)."""
    if views is None:
        return ViewParams()
    el = views.elevation
    return ViewParams(count=int(views.count), pattern=str(views.pattern),
                      radius=None if views.radius is None else float(views.radius),
                      elevation=None if el is None else (float(el.min), float(el.max)),
                      span_degrees=float(views.span_degrees), baseline=float(views.baseline))


def _spherical(cam: Camera) -> tuple[float, float, float]:
    """(radius m, azimuth rad, elevation rad) of the camera around its look-at point."""
    d = np.subtract(cam.location, cam.look_at).astype(np.float64)
    r = float(np.linalg.norm(d))
    return r, math.atan2(d[1], d[0]), math.asin(max(-1.0, min(1.0, d[2] / r))) if r > 0 else 0.0


def _at(cam: Camera, radius: float, azimuth: float, elevation: float) -> Camera:
    c = np.asarray(cam.look_at, dtype=np.float64)
    d = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                  math.sin(elevation)])
    loc = c + radius * d
    return replace(cam, location=tuple(round(float(v), 9) + 0.0 for v in loc))  # type: ignore[arg-type]


def view_cameras(main: Camera, params: ViewParams, *, seed: int) -> tuple[Camera, ...]:
    """The ``params.count`` cameras of a sample; ``[0]`` is ``main`` itself. Deterministic in ``seed``."""
    n = int(params.count)
    if n < 1:
        raise ValueError(f"render.views.count must be >= 1, got {n}")
    if params.pattern not in PATTERNS:
        raise ValueError(f"render.views.pattern {params.pattern!r}: allowed are {', '.join(PATTERNS)}")
    r0, az0, el0 = _spherical(main)
    radius = float(params.radius) if params.radius is not None else r0
    lo, hi = params.elevation if params.elevation is not None else (
        max(MIN_ELEVATION, math.degrees(el0) - 15.0), min(MAX_ELEVATION, math.degrees(el0) + 15.0))
    el = math.radians(min(max(math.degrees(el0), lo), hi))
    cams = [main]
    if params.pattern == "stereo":
        right, _, _ = post.camera_basis(main)
        for k in range(1, n):
            shift = k * params.baseline * right
            cams.append(replace(main, location=_vec(np.add(main.location, shift)),
                                look_at=_vec(np.add(main.look_at, shift))))
    elif params.pattern == "orbit":
        cams += [_at(main, radius, az0 + 2 * math.pi * k / n, el) for k in range(1, n)]
    elif params.pattern == "arc":
        d = math.radians(params.span_degrees) / max(n - 1, 1)
        offsets = [((k + 1) // 2) * d * (1 if k % 2 else -1) for k in range(1, n)]
        cams += [_at(main, radius, az0 + o, el) for o in offsets]
    else:  # random
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x7615])
        for _ in range(1, n):
            az = float(rng.uniform(0.0, 2 * math.pi))
            e = math.radians(float(rng.uniform(lo, hi)))
            cams.append(_at(main, radius, az, e))
    return tuple(cams)


def _vec(a: Any) -> tuple[float, float, float]:
    x, y, z = (round(float(v), 9) + 0.0 for v in a)
    return (x, y, z)


def member(view: int, ext: str) -> str:
    """The member extension of a view's file: ``view03.png``, ``view03.seg.png``."""
    return f"view{view:02d}.{ext}"


VIEW_PASSES = ("rgb", "depth", "segmentation", "normals", "albedo", "roughness", "metallic", "semantic")
"""Passes written for every view; ``flow``, captions and the amodal statistics are view 0's only."""

_VIEW0_EXTS = (*(PASS_EXT[p] for p in VIEW_PASSES), "depth.exr")
"""View 0's members: the sample's own files of the view passes (depth as PNG or EXR)."""
_VIEW_OBJECT_KEYS = ("id", "class", "classId", "bbox", "pixels", "pose", "box3d")
_FILE = "file:"
"""Prefix of encoded view members kept in an attempt's arrays (bytes as uint8) until the sample is written."""


def cameras_for(spec: Any, scene: Scene, seed: int) -> tuple[Camera, ...]:
    """The cameras of a sample of ``spec`` (just ``scene.camera`` without ``render.views``)."""
    return view_cameras(scene.camera, params_from_spec(getattr(spec.render, "views", None)), seed=seed)


def annotate_views(spec: Any, scene: Scene, cameras: tuple[Camera, ...], out: Any, meta: dict[str, Any],
                   arrays: dict[str, np.ndarray], *, png: Callable[[np.ndarray], bytes]) -> None:
    """``meta['views']`` and the encoded ``view{k:02d}.*`` members of views 1.. (kept in ``arrays``).

    View 0 is the attempt's own render: its entry reuses ``meta['objects']``; its members are
    copied from the top-level files by :func:`add_files`.
    """
    if len(cameras) < 2:
        return
    passes = {str(p) for p in spec.render.passes}
    width, height = int(meta["render"]["width"]), int(meta["render"]["height"])
    class_ids = classes.class_ids(dataset_vocabulary(spec))
    files, entries = view_entries(scene=scene, cameras=cameras, outputs=list(out.views), passes=passes,
                                  width=width, height=height, depth_format=str(spec.render.depth_format),
                                  class_ids=class_ids, png=png)
    entries[0]["objects"] = [{k: o[k] for k in _VIEW_OBJECT_KEYS if k in o} for o in meta["objects"]]
    meta["views"] = entries
    # No timings here: identical samples must give identical JSON (view render time is in the attempt's seconds).
    meta["render"]["views"] = {"count": len(cameras), "pattern": str(spec.render.views.pattern)}
    for ext, data in files.items():
        arrays[_FILE + ext] = np.frombuffer(data, dtype=np.uint8)


def add_files(meta: dict[str, Any], arrays: dict[str, np.ndarray], files: dict[str, bytes]) -> None:
    """The kept attempt's view members: view 0 copies the top-level files, views 1.. from ``arrays``."""
    add_member_files(meta, arrays, files, field="view", view0_exts=_VIEW0_EXTS, member_of=member)


def add_member_files(meta: dict[str, Any], arrays: dict[str, np.ndarray], files: dict[str, bytes], *,
                     field: str, view0_exts: tuple[str, ...], member_of: Callable[[int, str], str]) -> None:
    """Members of ``meta[field + "s"]`` (views or frames): entry 0 copies the top-level files named in
    ``view0_exts``, entries 1.. are the ``file:{field}...`` arrays that :func:`view_entries` encoded."""
    entries = meta.get(field + "s")
    if not entries:
        return
    for ext in view0_exts:
        if ext in files:
            files[member_of(0, ext)] = files[ext]
    if "depth" in meta and "scale" in meta["depth"]:
        entries[0]["depthScale"] = meta["depth"]["scale"]
    for name, data in arrays.items():
        if name.startswith(_FILE + field):
            files[name[len(_FILE):]] = data.tobytes()


def view_entries(*, scene: Scene, cameras: tuple[Camera, ...], outputs: list[Any], passes: set[str],
                 width: int, height: int, depth_format: str, class_ids: dict[str, int],
                 png: Callable[[np.ndarray], bytes], scenes: tuple[Scene, ...] | None = None,
                 member_of: Callable[[int, str], str] | None = None,
                 field: str = "view") -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Members ``view{k:02d}.*`` of views 1.. and the ``views`` entries of all views (view 0 without objects).

    ``outputs[k - 1]`` holds the arrays of view k >= 1 (``rgb``, ``depth``, ``index`` and optional
    ``normals``, ``albedo``, ``roughness``, ``metallic``, ``flow``, as the renderer returns them).
    Sequences reuse this with ``scenes`` (the scene at each frame), ``member_of`` and ``field="frame"``.
    """
    name_of = member_of or member
    if len(outputs) != len(cameras) - 1:
        raise ValueError(f"{len(cameras)} cameras but {len(outputs)} extra view renders")
    files: dict[str, bytes] = {}
    entries: list[dict[str, Any]] = []
    cls_of = {o.id: o.cls for o in scene.objects}
    for k, cam in enumerate(cameras):
        k_mat, e_mat = post.intrinsics(cam, width, height), post.extrinsics(cam)
        entry: dict[str, Any] = {field: k, "file": name_of(k, "png"), "intrinsics": post.matrix_json(k_mat),
                                 "extrinsics": post.matrix_json(e_mat), "location": list(cam.location),
                                 "lookAt": list(cam.look_at)}
        entries.append(entry)
        if k == 0:
            continue
        out = outputs[k - 1]
        seg = post.encode_segmentation(out.index)
        files[name_of(k, "png")] = png(post.linear_to_srgb8(out.rgb))
        surface = out.depth < post.BACKGROUND_DEPTH
        if "depth" in passes:
            if depth_format == "exr":
                depth = np.where(surface, out.depth, 0.0)
                files[name_of(k, "depth.exr")] = post.exr_bytes({"Y": np.nan_to_num(depth, nan=0.0)})
            else:
                depth16, scale = post.encode_depth(out.depth)
                files[name_of(k, "depth.png")] = png(depth16)
                entry["depthScale"] = scale
        if "segmentation" in passes:
            files[name_of(k, "seg.png")] = png(seg)
        if "normals" in passes and getattr(out, "normals", None) is not None:
            files[name_of(k, "normals.png")] = png(post.encode_normals(post.normals_to_camera(out.normals, e_mat),
                                                                      surface))
        if "albedo" in passes and getattr(out, "albedo", None) is not None:
            files[name_of(k, "albedo.png")] = png(post.linear_to_srgb8(out.albedo))
        for name in ("roughness", "metallic"):
            if name in passes and getattr(out, name, None) is not None:
                files[name_of(k, f"{name}.png")] = png(post.encode_unit_gray(getattr(out, name), surface))
        boxes, counts = post.bboxes_from_mask(seg), post.pixel_counts(seg)
        if "flow" in passes and getattr(out, "flow", None) is not None:
            files[name_of(k, "flow.exr")] = post.exr_bytes({"R": out.flow[..., 0], "G": out.flow[..., 1]})
        at = scenes[k] if scenes is not None else scene
        recs = groundtruth.object_records(at, cam, visible_pixels=counts, amodal=None, class_ids=class_ids)
        objects = []
        for oid, box in sorted(boxes.items()):
            obj: dict[str, Any] = {"id": oid, "class": cls_of.get(oid, "unknown"), "bbox": box, "pixels": counts[oid]}
            obj.update(recs.get(oid, {}))
            objects.append(obj)
        if "semantic" in passes:
            sem = groundtruth.semantic_mask(seg, {int(o["id"]): int(o["classId"]) for o in objects if "classId" in o})
            files[name_of(k, "sem.png")] = png(sem)
        entry["objects"] = objects
    return files, entries


def world_point(u: float, v: float, depth: float, intrinsics: Any, extrinsics: Any) -> np.ndarray:
    """The world point seen at pixel centre (u, v) with planar depth (camera z), OpenCV matrices."""
    k = np.asarray(intrinsics, dtype=np.float64)
    e = np.asarray(extrinsics, dtype=np.float64)
    cam = np.linalg.inv(k) @ np.array([u, v, 1.0]) * depth
    return (np.linalg.inv(e) @ np.append(cam, 1.0))[:3]
