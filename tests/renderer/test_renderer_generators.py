"""Generators are pure, seeded, stratified, and produce visibly different scenes."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from synth_contract.api import ALL_CATEGORIES
from synth_render.generators import GENERATORS, GenConfig
from synth_render.sampling import r_sequence
from synth_render.scene import Scene, scene_to_dict


def _scene(category: str, rank: int, seed: int) -> Scene:
    cfg = GenConfig(category=category, seed=seed, rank=rank, strata=r_sequence(rank))
    return GENERATORS[category](cfg, np.random.default_rng(seed))


def test_every_category_has_a_generator() -> None:
    assert set(GENERATORS) == set(ALL_CATEGORIES)


@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_same_inputs_give_the_same_scene(category: str) -> None:
    assert scene_to_dict(_scene(category, 5, 123)) == scene_to_dict(_scene(category, 5, 123))


@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_scenes_vary_across_samples(category: str) -> None:
    scenes = [scene_to_dict(_scene(category, r, 1000 + r)) for r in range(12)]
    params = {repr(s["params"]) for s in scenes}
    layouts = {repr([o["location"] for o in s["objects"]]) for s in scenes}
    assert len(params) >= 10 and len(layouts) == 12


@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_objects_are_labelled_with_unique_ids(category: str) -> None:
    for r in range(20):
        s = _scene(category, r, r)
        ids = [o.id for o in s.objects]
        assert s.objects and len(set(ids)) == len(ids) and min(ids) >= 1 and max(ids) < 256
        assert all(o.cls and (o.parts or o.simulation is not None) for o in s.objects)  # simulated: drawn from a bake
        assert s.category == category


def test_categories_differ_from_each_other() -> None:
    classes = {c: frozenset(o.cls for r in range(10) for o in _scene(c, r, r).objects if not o.distractor)
               for c in ALL_CATEGORIES}
    assert classes["characters"] == {"person"}
    assert classes["vehicles"] <= {"car", "van", "truck"}
    assert classes["environment"] <= {"tree", "rock", "building"}
    assert classes["fluids"] <= {"glass", "droplet", "puddle", "liquid"}


def test_main_parameters_are_stratified() -> None:
    """Any 20 consecutive ranks cover 5 strata of each main parameter with 2..7 samples each.

    (Independent uniform draws break these bounds in about 4 windows out of 10.)
    """
    for start in range(0, 5000, 13):
        points = np.array([r_sequence(r) for r in range(start, start + 20)])
        for dim in range(5):
            hist = np.histogram(points[:, dim], bins=5, range=(0, 1))[0]
            assert hist.min() >= 2 and hist.max() <= 7, (start, dim, hist)
    kinds = [_scene("lighting", r, r).params["kind"] for r in range(8)]
    assert sorted(set(kinds)) == ["area", "point", "spot", "sun"]


def test_only_the_blender_package_imports_blender() -> None:
    """Generators, scene model, sample, worker and the rest of synth_render stay pure: bpy, bmesh
    and mathutils are imported (even inside a function) only under synth_render/blender/."""
    root = Path(__file__).parents[2] / "renderer-image" / "synth_render"
    pure = [p for p in root.rglob("*.py") if p.relative_to(root).parts[0] != "blender"]
    assert {root / "generators" / "geometry.py", root / "sample.py", root / "worker.py"} <= set(pure)
    for path in pure:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import | ast.ImportFrom) else []
            module = node.module if isinstance(node, ast.ImportFrom) and node.module else ""
            top = {n.split(".")[0] for n in [*names, module] if n}
            assert not top & {"bpy", "bmesh", "mathutils"}, f"{path.relative_to(root)} imports Blender"
