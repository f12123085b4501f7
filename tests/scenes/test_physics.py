"""Physics placement: settled objects rest on a support, never interpenetrate, and settle the same everywhere."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from synth_contract.api import SynthDatasetSpec
from synth_render import physics
from synth_render.generators import GENERATORS, GenConfig
from synth_render.generators.staging import PHYSICS_DEFAULT, placement_of, stage
from synth_render.sampling import r_sequence
from synth_render.scene import Scene, scene_to_dict
from synth_render.transforms import trs

PENETRATION = 3e-3
"""Deepest overlap allowed after settling (metres): Bullet's contact slop is about a millimetre."""


def _scene(category: str, rank: int) -> Scene:
    cfg = GenConfig(category=category, seed=500 + rank, rank=rank, strata=r_sequence(rank))
    return GENERATORS[category](cfg, np.random.default_rng(500 + rank))


def _spec(**category: object) -> SynthDatasetSpec:
    return SynthDatasetSpec.model_validate({"samples": 10, "categories": [{"name": "geometry", **category}],
                                            "output": {"uri": "file:///tmp/x"}, "image": "renderer:test"})


CASES = [(c, r) for c in sorted(PHYSICS_DEFAULT) for r in range(3)]


@pytest.mark.parametrize(("category", "rank"), CASES)
def test_settled_objects_rest_on_a_support_and_do_not_interpenetrate(category: str, rank: int) -> None:
    settled = physics.settle(_scene(category, rank), seed=77 + rank)
    assert settled.physics is not None and settled.physics.objects
    found = physics.measure(settled)  # a world rebuilt from the recorded (rounded, Euler) poses
    assert found.max_penetration < PENETRATION
    for oid in settled.physics.objects:
        assert found.supports[oid] != "none", f"{category}/{rank}: object {oid} floats"
    for o in settled.objects:  # mesh check: no hull vertex below the ground
        hull = physics.object_hull(o)
        assert hull is not None
        m = trs(o.location, o.rotation, (1.0, 1.0, 1.0))
        lowest = float((hull.points @ m[:3, :3].T + m[:3, 3])[:, 2].min())
        assert lowest > -PENETRATION, f"{category}/{rank}: object {o.id} sinks {lowest:.4f} m into the ground"


def test_objects_tumble_rather_than_all_standing_upright() -> None:
    tilted = total = 0
    for category, rank in CASES:
        settled = physics.settle(_scene(category, rank), seed=rank)
        for o in settled.objects:
            total += 1
            up = trs((0, 0, 0), o.rotation, (1, 1, 1))[:3, 2]
            tilted += bool(abs(float(up[2])) < 0.95)  # the object's +Z no longer points up
    assert tilted >= 0.3 * total, f"only {tilted} of {total} objects ended anywhere but upright"


def test_settling_is_the_same_in_another_process() -> None:
    scene = _scene("composition", 4)
    here = json.dumps(scene_to_dict(physics.settle(scene, seed=9)), sort_keys=True)
    code = ("import json, numpy as np; from synth_render import physics; "
            "from synth_render.generators import GENERATORS, GenConfig; from synth_render.sampling import r_sequence; "
            "from synth_render.scene import scene_to_dict; "
            "cfg = GenConfig(category='composition', seed=504, rank=4, strata=r_sequence(4)); "
            "s = GENERATORS['composition'](cfg, np.random.default_rng(504)); "
            "print(json.dumps(scene_to_dict(physics.settle(s, seed=9)), sort_keys=True))")
    there = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert there == here


def test_the_settled_pose_is_what_the_scene_records() -> None:
    scene = _scene("geometry", 1)
    settled = physics.settle(scene, seed=3)
    assert settled.physics is not None
    moved = [o for o, b in zip(settled.objects, scene.objects, strict=True) if o.location != b.location]
    assert {o.id for o in moved} <= set(settled.physics.objects)
    assert moved, "nothing moved"
    d = scene_to_dict(settled)
    assert d["physics"]["steps"] == settled.physics.steps and d["physics"]["engine"].startswith("pybullet")


def test_placement_defaults_and_overrides() -> None:
    spec = _spec()
    assert placement_of(spec, "geometry") == "physics"
    for upright in ("vehicles", "characters", "environment"):
        assert placement_of(spec, upright) == "drop"
    assert placement_of(_spec(placement="drop"), "geometry") == "drop"
    scene = _scene("geometry", 2)
    dropped = stage(_spec(placement="drop"), scene, seed=1, aspect=1.0)
    assert dropped.physics is None
    assert [o.location for o in dropped.objects] == [o.location for o in scene.objects]


def test_vehicles_stay_on_their_wheels() -> None:
    spec = _spec()
    scene = _scene("vehicles", 1)
    staged = stage(spec, scene, seed=2, aspect=1.0)
    assert staged.physics is None
    assert [(o.location, o.rotation) for o in staged.objects] == [(o.location, o.rotation) for o in scene.objects]


def test_euler_angles_round_trip_through_the_rotation_matrix() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        r = physics._random_rotation(rng)
        back = trs((0, 0, 0), physics.euler_xyz(r), (1, 1, 1))[:3, :3]
        assert np.allclose(back, r, atol=1e-9)
