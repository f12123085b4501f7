"""The Blender side of multi-view samples: render a built scene again from more cameras.

Called by ``BlenderRenderer.render`` while the sample's scene is still built (after view 0's
render and its ground-truth renders), so the scene is built, its materials compiled and its
HDRI loaded once for all N views. Cycles keeps its synced scene between the view renders
(``use_persistent_data``), so a view costs a camera update plus the path tracing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from synth_render import post
from synth_render.blender import passes
from synth_render.rendering import ViewOutput
from synth_render.scene import Camera


def set_camera(bpy: Any, cam_obj: Any, cam: Camera) -> None:
    """Point the Blender camera object at ``cam`` (lens, sensor, pose, depth of field)."""
    import mathutils

    cam_obj.data.lens = cam.focal_mm
    cam_obj.data.sensor_width = cam.sensor_mm
    cam_obj.matrix_world = mathutils.Matrix(post.blender_matrix_world(cam).tolist())
    dof = cam_obj.data.dof
    dof.use_dof = cam.fstop > 0
    if dof.use_dof:
        dof.aperture_fstop = cam.fstop
        dof.focus_distance = float(np.linalg.norm(np.subtract(cam.look_at, cam.location)))


def render_views(renderer: Any, cameras: tuple[Camera, ...], *, normals: bool) -> tuple[ViewOutput, ...]:
    """Render the built scene from each camera (view 0's camera is set again by the next sample's build)."""
    if not cameras:
        return ()
    sc = renderer._scene
    saved = sc.render.use_persistent_data
    sc.render.use_persistent_data = True
    outs = []
    try:
        for cam in cameras:
            set_camera(renderer._bpy, renderer._camera, cam)
            t0 = time.perf_counter()
            renderer._render_quiet()
            seconds = time.perf_counter() - t0
            a = passes.read_exr(renderer._exr, normals=normals)
            outs.append(ViewOutput(rgb=a["rgb"], depth=a["depth"], index=a["index"], normals=a.get("normals"),
                                   albedo=a.get("albedo"), roughness=a.get("roughness"),
                                   metallic=a.get("metallic"), render_seconds=seconds))
    finally:
        sc.render.use_persistent_data = saved  # off again: the next sample's render syncs from scratch
    return tuple(outs)
