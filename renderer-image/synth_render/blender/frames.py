"""The Blender side of sequences: key the built scene's motion at every frame and render the frames.

``prepare`` runs after the sample's scene is built and before frame 0's render: it keys every
moving object at ``location + t v`` and the camera at its frame-t pose for Blender frames
``0 .. T + 1`` (frame t of the sample is Blender frame t + 1, as the still is) and, for sharp frames,
turns motion blur off and the vector pass on (motion-blurred frames get their flow from an extra
1-sample render each, as ``passes.aux_renders`` does for stills). ``render_frames`` renders frames
1.. of the built scene (Cycles keeps its synced scene between them); ``finish`` removes the camera's keys (the camera lives for the
worker). Flow of a frame comes from its own vector pass: pixels to the next frame, +u right, +v down.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from synth_render.blender import passes
from synth_render.blender.views import set_camera
from synth_render.rendering import FrameOutput
from synth_render.scene import Camera, Scene


def prepare(renderer: Any, scene: Scene, cameras: tuple[Camera, ...], *, flow: bool,
            motion_blur: bool = False) -> None:
    """Key object and camera motion for all frames; sharp frames with the vector pass for flow, or
    motion-blurred frames (frame 0's flow then comes from ``passes.aux_renders``)."""
    sc = renderer._scene
    count = len(cameras)
    velocity = {o.id: np.asarray(o.velocity, dtype=np.float64) for o in scene.objects if any(o.velocity)}
    sc.frame_set(1)
    for obj in renderer._sample_objects:
        v = velocity.get(int(getattr(obj, "pass_index", 0))) if obj.type == "MESH" else None
        if v is None:
            continue
        base = np.asarray(obj.matrix_world.translation, dtype=np.float64)
        for f in range(0, count + 2):
            obj.location = tuple(base + (f - 1) * v)
            obj.keyframe_insert("location", frame=f)
        action = obj.animation_data.action if obj.animation_data else None
        if action is not None and action not in renderer._sample_actions:
            renderer._sample_actions.append(action)
    cam = renderer._camera
    if any(c != cameras[0] for c in cameras):
        for f in range(0, count + 2):
            t = min(max(f - 1, 0), count - 1)
            # Beyond the last frame the camera keeps moving at the same rate (flow of the last frame).
            c = cameras[t] if f - 1 == t else _extrapolate(cameras, f - 1)
            set_camera(renderer._bpy, cam, c)
            cam.keyframe_insert("location", frame=f)
            cam.keyframe_insert("rotation_euler", frame=f)
    sc.render.use_motion_blur = motion_blur
    sc.view_layers[0].use_pass_vector = flow and not motion_blur  # Cycles has no vector pass under blur
    sc.frame_set(1)


def _extrapolate(cameras: tuple[Camera, ...], t: int) -> Camera:
    """A camera one step beyond the ends of the sequence (same step as the nearest pair)."""
    from dataclasses import replace

    a, b = (cameras[0], cameras[1]) if t < 0 else (cameras[-2], cameras[-1])
    step = np.subtract(b.location, a.location) if t >= 0 else np.subtract(a.location, b.location)
    base = b if t >= 0 else a
    return replace(base, location=tuple(float(x) for x in np.add(base.location, step)))  # type: ignore[arg-type]


def render_frames(renderer: Any, count: int, *, normals: bool, flow: bool,
                  motion_blur: bool = False) -> tuple[FrameOutput, ...]:
    """Render Blender frames 2 .. count (the sample's frames 1 .. count - 1)."""
    sc = renderer._scene
    sc.render.use_persistent_data = True
    outs = []
    for t in range(1, count):
        sc.frame_set(t + 1)
        sc.view_layers[0].use_pass_vector = flow and not motion_blur  # frame 0's extra renders switch it off
        t0 = time.perf_counter()
        renderer._render_quiet()
        seconds = time.perf_counter() - t0
        layers = passes.read_layers(renderer._exr)
        if flow and motion_blur:
            layers["Vector"] = _sharp_vector(renderer)
        a = passes.arrays(layers, normals=normals)
        outs.append(FrameOutput(rgb=a["rgb"], depth=a["depth"], index=a["index"], normals=a.get("normals"),
                                albedo=a.get("albedo"), roughness=a.get("roughness"), metallic=a.get("metallic"),
                                flow=a.get("flow") if flow else None, render_seconds=seconds))
    return tuple(outs)


def _sharp_vector(renderer: Any) -> dict[str, np.ndarray]:
    """The vector pass of the current frame from a 1-sample render without motion blur."""
    sc, vl = renderer._scene, renderer._scene.view_layers[0]
    saved = (sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur, sc.cycles.max_bounces)
    sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur, sc.cycles.max_bounces = 1, False, False, 0
    vl.use_pass_vector = True
    try:
        renderer._render_quiet()
        return dict(passes.read_layers(renderer._exr)["Vector"])
    finally:
        vl.use_pass_vector = False
        sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur, sc.cycles.max_bounces = saved


def finish(renderer: Any) -> None:
    """Drop the camera's keys (and its action), back to frame 1, vector pass off."""
    cam = renderer._camera
    if cam.animation_data is not None:
        action = cam.animation_data.action
        cam.animation_data_clear()
        if action is not None and action not in renderer._sample_actions:
            renderer._bpy.data.actions.remove(action, do_unlink=True)
    renderer._scene.view_layers[0].use_pass_vector = False
    renderer._scene.frame_set(1)
