"""Placement: objects rest on a surface and never interpenetrate each other or the backdrop."""

from __future__ import annotations

import numpy as np
import pytest

from synth_contract.api import ALL_CATEGORIES
from synth_render.assets.catalog import AssetEntry
from synth_render.assets.choose import with_library_assets
from synth_render.assets.library import Library
from synth_render.assets.sample_library import SIZES
from synth_render.generators import GENERATORS, GenConfig
from synth_render.placement import Layout, Surface, object_bounds, overlap
from synth_render.sampling import r_sequence
from synth_render.scene import SHAPE_BOUNDS, Part, Scene, SceneObject
from synth_render.transforms import trs

TOL = 2e-3
ENVS = (("builtin:studiolights", "city.exr"), ("builtin:studiolights", "studio.exr"))


def _scene(category: str, rank: int, *, environments: tuple[tuple[str, str], ...] = ()) -> Scene:
    cfg = GenConfig(category=category, seed=1000 + rank, rank=rank, strata=r_sequence(rank),
                    environments=environments)
    return GENERATORS[category](cfg, np.random.default_rng(1000 + rank))


def _local_box(corners: np.ndarray, part: Part) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of world points in a background part's own unit frame."""
    inv = np.linalg.inv(trs(part.location, part.rotation, part.scale))
    local = (inv @ np.c_[corners, np.ones(len(corners))].T).T[:, :3]
    return local.min(axis=0), local.max(axis=0)


def _corners(box: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    lo, hi = box
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def _supported(box: tuple[np.ndarray, np.ndarray], others: list[tuple[np.ndarray, np.ndarray]],
               scene: Scene) -> bool:
    bottom = float(box[0][2])
    if abs(bottom) < TOL:
        return True  # the ground
    cx, cy = (box[0][:2] + box[1][:2]) / 2
    tops = [o for o in others if abs(float(o[1][2]) - bottom) < TOL
            and o[0][0] - TOL <= cx <= o[1][0] + TOL and o[0][1] - TOL <= cy <= o[1][1] + TOL]
    for part in scene.background:
        if part.primitive == "plane":
            continue
        lo, hi = object_bounds(SceneObject(id=0, cls="bg", parts=(part,)))
        if abs(float(hi[2]) - bottom) < TOL and lo[0] - TOL <= box[0][0] and box[1][0] <= hi[0] + TOL \
                and lo[1] - TOL <= box[0][1] and box[1][1] <= hi[1] + TOL:
            return True
    return bool(tops)


@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_objects_rest_on_a_surface_and_never_overlap(category: str) -> None:
    for rank in range(16):
        _assert_placed(_scene(category, rank, environments=ENVS if rank % 2 else ()), category, rank)


# The sample library's classes and catalog sizes: a chair (0.9 m) may replace a 10 cm cube.
LIBRARY = Library("objects", "builtin:sample-objects", tuple(
    AssetEntry(library="objects", path=f"{cls}/{cls}-{k:03d}.glb", cls=cls, format="glb", size_m=size)
    for cls, size in sorted(SIZES.items()) for k in range(2)))


@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_library_objects_rest_on_a_surface_and_never_overlap(category: str) -> None:
    replaced = 0
    for rank in range(8):
        scene = with_library_assets(_scene(category, rank, environments=ENVS), [LIBRARY], share=1.0,
                                    seed=1000 + rank, rank=rank, dataset_seed=7)
        replaced += sum(o.asset is not None for o in scene.objects)
        _assert_placed(scene, category, rank)
    assert replaced > 0, category  # the scenes do hold library objects


def _assert_placed(scene: Scene, category: str, rank: int) -> None:
    boxes = [object_bounds(o) for o in scene.objects]
    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            if scene.objects[i].simulation is not None or scene.objects[j].simulation is not None:
                continue  # liquid fills its glass, smoke wraps its source: media share space by design
            assert not overlap(a, boxes[j]), (category, rank, scene.objects[i].cls, scene.objects[j].cls)
        for part in scene.background:  # nor into the table or walls (planes are ground, road, markings)
            if part.primitive != "plane":
                lo, hi = _local_box(_corners(a), part)
                ulo, uhi = SHAPE_BOUNDS[part.primitive]
                assert not overlap((lo, hi), (np.array(ulo), np.array(uhi))), (category, rank, part.primitive)
        obj = scene.objects[i]
        if obj.velocity[2] < 0:  # falling (motion): in the air on purpose
            continue
        assert _supported(a, [b for k, b in enumerate(boxes) if k != i], scene), (category, rank, obj.cls, a)


def test_a_full_surface_refuses_more_objects_instead_of_overlapping() -> None:
    table = Surface(0.75, -0.5, -0.5, 0.5, 0.5)
    layout = Layout(surfaces=[table])
    box = SceneObject(id=1, cls="cube", parts=(Part("cube", _mat()),), scale=(0.4, 0.4, 0.4))
    rng = np.random.default_rng(0)
    placed = [p for p in (layout.scatter(box, rng, radius=0.5, on=table) for _ in range(12)) if p is not None]
    assert 1 <= len(placed) <= 4
    assert all(o.location[2] == pytest.approx(0.75 + 0.2) for o in placed)
    bounds = [object_bounds(o) for o in placed]
    assert not any(overlap(a, b) for i, a in enumerate(bounds) for b in bounds[i + 1:])


def test_stacked_boxes_stand_on_each_other() -> None:
    layout = Layout()
    base = layout.drop(SceneObject(id=1, cls="cube", parts=(Part("cube", _mat()),), scale=(1.0, 1.0, 1.0)), 0.0, 0.0,
                       stackable=True)
    top = layout.stack(SceneObject(id=2, cls="cube", parts=(Part("cube", _mat()),), scale=(0.5, 0.5, 0.5)), 0)
    assert base is not None and top is not None
    assert object_bounds(top)[0][2] == pytest.approx(object_bounds(base)[1][2], abs=1e-3)
    assert layout.stack(SceneObject(id=3, cls="ball", parts=(Part("sphere", _mat()),)), 1, stackable=False) is not None
    assert layout.stack(SceneObject(id=4, cls="ball", parts=(Part("sphere", _mat()),)), 2) is None  # a ball is round


def test_placement_is_reproducible() -> None:
    for category in ALL_CATEGORIES:
        assert _scene(category, 7, environments=ENVS) == _scene(category, 7, environments=ENVS)


def _mat():  # type: ignore[no-untyped-def]
    from synth_render.scene import Material

    return Material()


def test_library_objects_keep_their_catalog_size() -> None:
    """A mug is a mug's size and a chair a chair's, whatever procedural shape they replaced."""
    sizes: list[tuple[str, float]] = []
    for rank in range(8):
        scene = with_library_assets(_scene("composition", rank, environments=ENVS), [LIBRARY], share=1.0,
                                    seed=2000 + rank, rank=rank, dataset_seed=7)
        sizes += [(o.asset.cls, o.asset.size) for o in scene.objects if o.asset is not None]
    assert sizes
    true = [s for cls, s in sizes if 0.85 * SIZES[cls] - 1e-4 <= s <= 1.15 * SIZES[cls] + 1e-4]
    assert len(true) >= 0.8 * len(sizes), f"only {len(true)} of {len(sizes)} library objects at their catalog size"
    mugs = [s for cls, s in sizes if cls == "mug"]
    assert not mugs or max(mugs) <= 1.15 * SIZES["mug"] + 1e-4, "a mug never grows to the size of what it replaced"
