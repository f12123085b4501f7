"""After the generator and the asset swap: settle the objects (or not) and frame the subjects.

``sample.scene_for`` calls :func:`stage` once per attempt. A category's ``placement`` (the spec's,
else :data:`PHYSICS_DEFAULT`) picks rigid-body settling (``synth_render.physics``) or the upright
drop the generator already did; categories in ``framing.FILL`` then get their camera re-aimed.
Seeded from the sample's render seed only, so a re-render stages the same scene.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synth_render import physics
from synth_render.generators.framing import FILL, frame
from synth_render.scene import Scene

PHYSICS_DEFAULT = frozenset({"geometry", "materials", "lighting", "camera", "composition"})
"""Categories settled by physics unless the spec says ``placement: drop``; the others (vehicles,
characters, buildings in environment, liquids, effects, moving objects) stand upright."""


def placement_of(spec: Any, category: str) -> str:
    """``physics`` or ``drop`` for a category: its ``categories[].placement``, else the default."""
    for c in getattr(spec, "categories", ()) or ():
        if str(c.name) == category and getattr(c, "placement", None) is not None:
            return str(c.placement)
    return "physics" if category in PHYSICS_DEFAULT else "drop"


def stage(spec: Any, scene: Scene, *, seed: int, aspect: float) -> Scene:
    """The scene settled (physics categories) and framed (categories with a fill range)."""
    if placement_of(spec, scene.category) == "physics":
        scene = physics.settle(scene, seed=seed)
    fill = FILL.get(scene.category)
    if fill is not None:
        scene = frame(scene, np.random.default_rng([seed & 0xFFFFFFFFFFFF, 0xF4A3E]), fill=fill, aspect=aspect)
    return scene
