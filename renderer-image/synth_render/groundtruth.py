"""Per-object 3D ground truth from the scene description: pose, 3D box, visibility, truncation.

Pure numpy, no Blender: the object transforms come from the scene description (the same
numbers the Blender layer builds), the camera from ``post.extrinsics``/``post.intrinsics``.

Conventions (also written into every sample's JSON):

- ``pose``: 4x4 rigid object-to-camera transform, OpenCV camera (+x right, +y down, +z
  forward). The object frame is the object's origin and rotation; its scale is not in the pose.
- ``box3d``: ``{center, size, rotation}``: centre in camera coordinates (metres), edge lengths
  along the box axes (metres, the object's scale included) and the 3x3 rotation of the box
  axes in the camera frame (equal to the pose's rotation). The box is the object-aligned box
  around its parts' primitive bounds, so it contains the object.
- ``visibleFraction``: visible pixels / unoccluded pixels. The unoccluded ("amodal") mask of each
  object comes from extra 1-sample renders of the object-index pass in which every other object
  and the background are hidden from the camera. Objects whose projected 3D boxes do not overlap
  share one render (they cannot occlude each other), so the cost is a few 1-spp renders per
  sample, not one per object. Pixels outside the frame are not counted (see ``truncated``).
- ``truncated``: the object's unoccluded mask reaches the image border (part of it lies outside
  the frame).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_render import post
from synth_render.scene import SHAPE_BOUNDS, Camera, Scene, SceneObject
from synth_render.transforms import trs

_UNIT = (np.array([-0.5, -0.5, -0.5]), np.array([0.5, 0.5, 0.5]))


def _shape_bounds(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Local bounds of a unit shape as the Blender layer builds it (unknown meshes: the unit cube)."""
    b = SHAPE_BOUNDS.get(shape)
    return (np.asarray(b[0], dtype=np.float64), np.asarray(b[1], dtype=np.float64)) if b else _UNIT


def aabb_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The 8 corners (8, 3) of the axis-aligned box from ``lo`` to ``hi``."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def local_bounds(obj: SceneObject) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of the object's parts in its own frame, before its scale (parts' transforms applied)."""
    if obj.asset is not None:  # normalised library mesh: largest side ``size``, base on the origin
        h = obj.asset.size / 2
        return np.array([-h, -h, 0.0]), np.array([h, h, 2 * h])
    pts = []
    for part in obj.parts:
        lo, hi = _shape_bounds(str(part.primitive))
        m = trs(part.location, part.rotation, part.scale)
        c = aabb_corners(lo, hi)
        pts.append(c @ m[:3, :3].T + m[:3, 3])
    if not pts:
        return np.zeros(3), np.zeros(3)
    allp = np.concatenate(pts)
    return allp.min(axis=0), allp.max(axis=0)


def object_pose(obj: SceneObject, extrinsics: np.ndarray) -> np.ndarray:
    """Rigid 4x4 object-to-camera (OpenCV) transform."""
    m = trs(obj.location, obj.rotation, (1.0, 1.0, 1.0))
    return np.asarray(extrinsics @ m)


def box3d(obj: SceneObject, extrinsics: np.ndarray) -> dict[str, Any]:
    """The object's 3D box in the camera frame: ``{center, size, rotation}`` (metres)."""
    lo, hi = local_bounds(obj)
    s = np.asarray(obj.scale, dtype=np.float64)
    pose = object_pose(obj, extrinsics)
    centre_obj = (lo + hi) / 2 * s
    centre = pose[:3, :3] @ centre_obj + pose[:3, 3]
    return {"center": centre, "size": (hi - lo) * np.abs(s), "rotation": pose[:3, :3]}


def box_corners(box: dict[str, Any]) -> np.ndarray:
    """The 8 corners (8, 3) of a ``box3d`` in the frame the box is given in."""
    half = np.asarray(box["size"], dtype=np.float64) / 2
    r = np.asarray(box["rotation"], dtype=np.float64)
    local = aabb_corners(-half, half)
    return np.asarray(local @ r.T + np.asarray(box["center"], dtype=np.float64))


def projected_box(box: dict[str, Any], k: np.ndarray, width: int, height: int) -> tuple[float, ...] | None:
    """Pixel extent (x0, y0, x1, y1) of a camera-frame box clipped to the frame; None when off-screen.

    A box that reaches behind the camera covers the whole frame (conservative).
    """
    c = box_corners(box)
    if (c[:, 2] <= 1e-6).all():
        return None
    if (c[:, 2] <= 1e-6).any():
        return (0.0, 0.0, float(width), float(height))
    uv = (k @ c.T).T
    uv = uv[:, :2] / uv[:, 2:3]
    x0, y0 = uv.min(axis=0)
    x1, y1 = uv.max(axis=0)
    if x1 < 0 or y1 < 0 or x0 > width or y0 > height:
        return None
    return (max(float(x0), 0.0), max(float(y0), 0.0), min(float(x1), float(width)), min(float(y1), float(height)))


def _overlap(a: Sequence[float], b: Sequence[float], pad: float = 2.0) -> bool:
    return not (a[2] + pad < b[0] or b[2] + pad < a[0] or a[3] + pad < b[1] or b[3] + pad < a[1])


@dataclass(frozen=True)
class AmodalPlan:
    """Which objects share each amodal render (ids), and the objects that are off-screen."""

    groups: tuple[tuple[int, ...], ...]
    offscreen: tuple[int, ...]


def amodal_groups(scene: Scene, width: int, height: int) -> AmodalPlan:
    """Greedy colouring of the objects by overlap of their projected 3D boxes.

    Objects in one group cannot occlude each other (their projections are disjoint), so one
    render with only that group visible gives every member's unoccluded mask.
    """
    e = post.extrinsics(scene.camera)
    k = post.intrinsics(scene.camera, width, height)
    extents: list[tuple[int, tuple[float, ...]]] = []
    off: list[int] = []
    for obj in scene.objects:
        ext = projected_box(box3d(obj, e), k, width, height)
        if ext is None:
            off.append(obj.id)
        else:
            extents.append((obj.id, ext))
    groups: list[list[tuple[int, tuple[float, ...]]]] = []
    for oid, ext in extents:
        for g in groups:
            if not any(_overlap(ext, other) for _, other in g):
                g.append((oid, ext))
                break
        else:
            groups.append([(oid, ext)])
    return AmodalPlan(groups=tuple(tuple(o for o, _ in g) for g in groups), offscreen=tuple(off))


def amodal_stats(amodal_maps: Iterable[np.ndarray], seg: np.ndarray) -> dict[int, tuple[int, bool]]:
    """Per object id: (unoccluded pixel count, touches the border) from the amodal index maps.

    The visible mask is added to the unoccluded one, so that anti-aliasing differences between
    the full render and the 1-sample amodal render never give a fraction above 1.
    """
    out: dict[int, tuple[int, bool]] = {}
    ids_vis = {int(i) for i in np.unique(seg) if i != 0}
    for amap in amodal_maps:
        ids = np.rint(np.nan_to_num(amap, nan=0.0)).astype(np.int64)
        for oid in np.unique(ids):
            if oid == 0:
                continue
            m = (ids == oid) | (seg == oid)
            border = bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
            out[int(oid)] = (int(m.sum()), border)
    for oid in ids_vis - set(out):  # visible but not in any amodal map: its visible mask is all we know
        m = seg == oid
        out[oid] = (int(m.sum()), bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()))
    return out


def _r(a: Any, nd: int = 6) -> Any:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        return round(float(arr), nd) + 0.0
    return [_r(x, nd) for x in arr]


def object_records(scene: Scene, camera: Camera, *, visible_pixels: dict[int, int],
                   amodal: dict[int, tuple[int, bool]] | None, class_ids: dict[str, int]) -> dict[int, dict[str, Any]]:
    """The 3D fields of each visible object's JSON entry, keyed by object id."""
    e = post.extrinsics(camera)
    out: dict[int, dict[str, Any]] = {}
    for obj in scene.objects:
        if obj.id not in visible_pixels:
            continue
        box = box3d(obj, e)
        rec: dict[str, Any] = {
            "pose": _r(object_pose(obj, e)),
            "box3d": {"center": _r(box["center"]), "size": _r(box["size"]), "rotation": _r(box["rotation"])},
        }
        if obj.cls in class_ids:
            rec["classId"] = class_ids[obj.cls]
        if amodal is not None:
            full, border = amodal.get(obj.id, (visible_pixels[obj.id], False))
            rec["visibleFraction"] = round(min(1.0, visible_pixels[obj.id] / max(full, 1)), 4)
            rec["truncated"] = border
        out[obj.id] = rec
    return out


def semantic_mask(seg: np.ndarray, id_to_class: dict[int, int]) -> np.ndarray:
    """Instance mask -> class-id mask (uint8, or uint16 above 255 classes); 0 is background."""
    top = max(id_to_class.values(), default=0)
    lut = np.zeros(int(seg.max(initial=0)) + 1, dtype=np.uint16 if top > 255 else np.uint8)
    for oid, cid in id_to_class.items():
        if oid < len(lut):
            lut[oid] = cid
    return np.asarray(lut[seg])


CONVENTIONS: dict[str, str] = {
    "pose": "4x4 rigid object-to-camera, OpenCV camera (+x right, +y down, +z forward), metres",
    "box3d": "center (camera frame, m), size (edge lengths along the box axes, m, scale included), "
             "rotation (box axes in the camera frame)",
    "visibleFraction": "visible pixels / unoccluded pixels (amodal 1-spp object-index renders, in-frame pixels)",
    "truncated": "the unoccluded mask reaches the image border",
}
