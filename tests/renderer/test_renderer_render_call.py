"""The render call runs the render operator without ``bpy.ops``' view-layer updates (issue #25).

``bpy.ops`` evaluates the interactive depsgraph before and after every operator; the render
pipeline evaluates a depsgraph of its own, so in the worker those updates are main-thread time
the GPU waits through (two per render call, the amodal renders included). Same pixels either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from synth_render.rendering import Extras
from synth_render.scene import Camera, Light, Material, Part, Scene, SceneObject, World

pytestmark = pytest.mark.blender


def _scene() -> Scene:
    cam = Camera(location=(3.0, -4.0, 2.0), look_at=(0.0, 0.0, 0.5), focal_mm=35.0)
    ball = SceneObject(id=3, cls="ball", parts=(Part("sphere", Material((0.8, 0.2, 0.2))),),
                       location=(0.0, 0.0, 0.5), scale=(0.4, 0.4, 0.4))
    cube = SceneObject(id=5, cls="cube", parts=(Part("cube", Material((0.2, 0.6, 0.8))),),
                       location=(0.4, 0.6, 0.4), scale=(0.5, 0.5, 0.5))
    return Scene(category="geometry", camera=cam, objects=(ball, cube), lights=(Light("sun", (0.0, 0.0, 5.0), energy=3.0),),
                 world=World(color=(0.3, 0.3, 0.35)))


def _render(renderer: Any) -> Any:
    return renderer.render(_scene(), width=48, height=32, spp=2, denoise=False, seed=4, normals=False,
                           extras=Extras(amodal_groups=((3,), (5,))))


def test_no_view_layer_update_around_the_render_calls_and_the_same_pixels(renderer: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import bpy
    from bpy.ops import _BPyOpsSubModOp

    from synth_render.blender import renderer as blender_renderer

    updates = []
    real = _BPyOpsSubModOp._view_layer_update
    monkeypatch.setattr(_BPyOpsSubModOp, "_view_layer_update",
                        staticmethod(lambda context: (updates.append(1), real(context))[1]))
    fast = _render(renderer)
    assert updates == [] and len(fast.amodal) == 2  # main render and two amodal renders, no update
    monkeypatch.setattr(blender_renderer, "render_operator", lambda: bpy.ops.render.render)
    plain = _render(renderer)
    assert len(updates) == 6  # what bpy.ops did: one before and one after each of the three calls
    for name in ("rgb", "depth", "index"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(plain, name))
    for a, b in zip(fast.amodal, plain.amodal, strict=True):
        np.testing.assert_array_equal(a, b)
