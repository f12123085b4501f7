"""Framing: the camera aims at the subjects and they fill a seeded share of the frame."""

from __future__ import annotations

import numpy as np
import pytest

from synth_render.generators import GENERATORS, GenConfig
from synth_render.generators.framing import FILL, MAX_SIDE, _extent, _world_corners, frame
from synth_render.sampling import r_sequence


@pytest.mark.parametrize("category", sorted(FILL))
def test_subjects_fill_the_drawn_share_of_the_frame(category: str) -> None:
    hits = 0
    for rank in range(4):
        cfg = GenConfig(category=category, seed=900 + rank, rank=rank, strata=r_sequence(rank))
        scene = GENERATORS[category](cfg, np.random.default_rng(900 + rank))
        framed = frame(scene, np.random.default_rng(rank), fill=FILL[category], aspect=1.0)
        assert framed.framing is not None
        lo, hi = FILL[category]
        assert lo <= framed.framing.target <= hi
        assert lo / 3 <= framed.framing.fill <= framed.framing.target + 0.05
        subjects = [o for o in framed.objects if not o.distractor] or list(framed.objects)
        ext = _extent(framed.camera, np.concatenate([_world_corners(o) for o in subjects]), 1.0)
        assert ext is not None and ext[0] <= 1.0, "every subject stays in the frame"
        area, fw, fh, _, _ = ext
        assert area == pytest.approx(framed.framing.fill, abs=1e-3)
        assert max(fw, fh) <= MAX_SIDE + 1e-3
        hits += abs(area - framed.framing.target) < 0.05 or max(fw, fh) > MAX_SIDE - 0.05
    # A wall or an object in the line of sight, or a box that perspective pushes off-centre, may keep the
    # camera back (a smaller fill, never a larger one, never under a third of the range).
    assert hits >= 2, f"{category}: the fill missed its target in {4 - hits} of 4 scenes"
