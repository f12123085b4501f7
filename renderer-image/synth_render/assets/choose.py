"""Which subject objects of a sample become library assets, and which assets: pure and seeded.

A category with ``assets: {libraries, share}`` hands ``share`` of its subject objects (not
distractors) to the libraries. The choice depends only on the sample's seed and its rank in
the category: which objects are replaced comes from the seed; the class cycles with the rank
(every class gets its turn, whatever the class sizes) and, within a class, its assets take turns,
so the assets of a class are used evenly. The asset keeps the replaced
object's footprint position and heading, stands on the replaced object's base, and gets its
catalog size (``sizeMeters``, else the class prior of ``catalog.class_size``) with a seeded
+-15% jitter: a mug stays a mug's size next to a 80 cm cube, whatever it replaced (the camera
frames the subjects after placement, ``generators.framing``), and a seeded colour that the
renderer uses when the asset brings no material of its own.

Placement reserved only the replaced object's bounds, so the asset's size is then capped to fit
in them: its safe outer bounds (:func:`synth_render.placement.asset_bounds`, a ``size`` cube
turned by the heading) stay inside the reserved footprint and below anything above it. Objects
that carry another object on top, and objects whose footprint would leave an asset under a
quarter of their size, stay procedural. So the no-interpenetration guarantee of placement holds
for library objects too.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from synth_render.assets.catalog import AssetEntry
from synth_render.assets.library import Library
from synth_render.placement import Box, asset_bounds, object_bounds, overlap
from synth_render.scene import SHAPE_BOUNDS, AssetRef, Scene, SceneObject

MAX_PER_SAMPLE = 64
GAP = 0.04
"""Clearance an asset grown past its reserved footprint keeps from other objects (placement's gap)."""


def _pool(libraries: Sequence[Library]) -> tuple[list[str], dict[str, list[tuple[Library, AssetEntry]]]]:
    by_cls: dict[str, list[tuple[Library, AssetEntry]]] = {}
    for lib in sorted(libraries, key=lambda x: x.name):
        for e in lib.entries:
            by_cls.setdefault(e.cls, []).append((lib, e))
    return sorted(by_cls), by_cls


def extent(obj: SceneObject) -> tuple[float, float]:
    """(base z, largest dimension) of a procedural object, from its parts' bounds (rotation ignored)."""
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for p in obj.parts:
        blo, bhi = SHAPE_BOUNDS.get(p.primitive, ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5)))
        a = np.asarray(p.location) + np.asarray(blo) * np.abs(p.scale)
        b = np.asarray(p.location) + np.asarray(bhi) * np.abs(p.scale)
        lo, hi = np.minimum(lo, np.minimum(a, b)), np.maximum(hi, np.maximum(a, b))
    if not np.isfinite(lo).all():
        return obj.location[2], 1.0
    s = np.abs(np.asarray(obj.scale))
    base = obj.location[2] + lo[2] * s[2]
    return float(base), float(max((hi - lo) * s))


def _fit(obj: SceneObject, base: float, yaw: float, others: Sequence[Box]) -> float:
    """The largest asset size whose outer bounds stay in what placement reserved for ``obj``."""
    lo, hi = object_bounds(obj)
    x, y = float(obj.location[0]), float(obj.location[1])
    half = min(x - lo[0], hi[0] - x, y - lo[1], hi[1] - y)
    fit = 2 * float(half) / (abs(math.cos(yaw)) + abs(math.sin(yaw)))
    for olo, ohi in others:  # whatever hangs above the footprint caps the height
        if olo[2] >= base - 1e-6 and olo[0] < x + fit / 2 and ohi[0] > x - fit / 2 \
                and olo[1] < y + fit / 2 and ohi[1] > y - fit / 2:
            fit = min(fit, float(olo[2]) - base)
    return max(fit, 0.0)


def _room(at: tuple[float, float, float], yaw: float, want: float, fit: float, others: Sequence[Box],
          background: Sequence[Box]) -> float:
    """``want`` or less (10% steps), if such bounds are free around the reserved spot and supported; else ``fit``.

    Free: 4 cm from every other object (placement's gap) and out of the table and walls.
    Supported: on the ground, or the footprint within the top of the table or object it stands on.
    """
    for k in range(8):
        size = want * 0.9**k
        if size <= fit:
            break
        lo, hi = asset_bounds(size, yaw, at)
        if any(overlap((lo, hi), o, gap=GAP) for o in others) or any(overlap((lo, hi), b) for b in background):
            continue
        tops = [b for b in (*background, *others) if abs(float(b[1][2]) - at[2]) < 1e-3
                and b[0][0] <= lo[0] and hi[0] <= b[1][0] and b[0][1] <= lo[1] and hi[1] <= b[1][1]]
        if abs(at[2]) < 1e-4 or tops:
            return size
    return fit


def _carries(box: Box, others: Sequence[Box]) -> bool:
    """Another object stands on top of this box."""
    lo, hi = box
    return any(abs(float(olo[2]) - float(hi[2])) < 2e-3 and olo[0] < hi[0] and ohi[0] > lo[0]
               and olo[1] < hi[1] and ohi[1] > lo[1] for olo, ohi in others)


def pick(libraries: Sequence[Library], *, rank: int, slot: int, seed: int) -> AssetEntry | None:
    """The asset for the ``slot``-th replaced object of the sample with this category rank."""
    return _pick(*_pool(libraries), rank=rank, slot=slot, seed=seed)


def _pick(classes: list[str], by_cls: dict[str, list[tuple[Library, AssetEntry]]], *, rank: int, slot: int,
          seed: int) -> AssetEntry | None:
    if not classes:
        return None
    off = np.random.default_rng([seed & 0xFFFFFFFF, 0xA55E7]).integers(0, 2**31, size=2)
    g = rank * MAX_PER_SAMPLE + slot + int(off[0])
    cls = classes[g % len(classes)]
    members = by_cls[cls]
    turn = g // len(classes)  # how often this class had its turn before: its assets take turns too
    return members[(turn + int(off[1])) % len(members)][1]


def with_library_assets(scene: Scene, libraries: Sequence[Library], *, share: float, seed: int,
                        rank: int, dataset_seed: int = 0) -> Scene:
    """The scene with ``share`` of its subject objects replaced by library assets.

    ``seed`` is the sample's (render) seed, ``rank`` its rank in the category and
    ``dataset_seed`` the dataset's seed (it fixes the class and asset order of the whole run).
    """
    boxes = [object_bounds(o) for o in scene.objects]
    walls = [object_bounds(SceneObject(id=0, cls="background", parts=(p,))) for p in scene.background
             if p.primitive != "plane"]  # table, walls, kerbs: planes are ground, road and markings
    subjects = [i for i, o in enumerate(scene.objects) if not o.distractor and o.asset is None and o.parts
                and not _carries(boxes[i], boxes[:i] + boxes[i + 1:])]
    if not subjects or share <= 0 or not any(lib.entries for lib in libraries):
        return scene
    rng = np.random.default_rng([seed & 0xFFFFFFFFFFFF, 0xA55E75])
    want = share * len(subjects)
    count = min(len(subjects), math.floor(want + rng.random()) if share < 1 else len(subjects))
    chosen = sorted(rng.permutation(subjects)[:count].tolist())
    uris = {lib.name: lib.uri for lib in libraries}
    objects = list(scene.objects)
    classes, by_cls = _pool(libraries)
    replaced = 0
    for slot, i in enumerate(chosen):
        entry = _pick(classes, by_cls, rank=rank, slot=slot, seed=dataset_seed)
        if entry is None:
            break
        obj = objects[i]
        _, size = extent(obj)
        base = math.ceil(float(boxes[i][0][2]) * 1e5) / 1e5  # placement's bottom (rounded up: never sinks)
        target = entry.size_m * float(rng.uniform(0.85, 1.15))  # true size, not the replaced shape's
        yaw = float(obj.rotation[2]) if any(obj.rotation) else float(rng.uniform(0, 2 * math.pi))
        r, g, b = colorsys.hsv_to_rgb(float(rng.random()), float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.35, 0.9)))
        others = boxes[:i] + boxes[i + 1:]
        fit = _room((float(obj.location[0]), float(obj.location[1]), base), yaw, target,
                    _fit(obj, base, yaw, others), others, walls)
        if fit < 0.25 * size:
            continue  # the reserved footprint is too narrow for a recognisable asset: keep the shape
        target = math.floor(min(target, fit - 1e-5) * 1e5) / 1e5  # rounded down: never wider than reserved
        boxes[i] = asset_bounds(target, yaw, (float(obj.location[0]), float(obj.location[1]), base))  # what it takes now
        replaced += 1
        ref = AssetRef(library=entry.library, id=entry.path, uri=uris[entry.library], cls=entry.cls,
                       size=target, license=entry.license, attribution=entry.attribution,
                       color=(round(r, 4), round(g, 4), round(b, 4)))
        objects[i] = dataclasses.replace(obj, cls=entry.cls, asset=ref, parts=(),
                                         location=(obj.location[0], obj.location[1], base),
                                         rotation=(0.0, 0.0, round(yaw, 6)), scale=(1.0, 1.0, 1.0))
    params = {**scene.params, "assets": {"share": share, "replaced": replaced}}
    return dataclasses.replace(scene, objects=tuple(objects), params=params)
