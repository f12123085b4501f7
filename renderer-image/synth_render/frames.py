"""Short sequences (``render.frames``): where things are at frame t, and what each frame writes.

Pure (no Blender). Frame 0 is the sample's still (its top-level files); at frame t an object
with ``velocity`` v (metres per frame) is at ``location + t v`` and the camera has orbited
``t * cameraDegreesPerFrame`` degrees about its look-at point (azimuth, about +Z). The Blender
layer keys exactly these positions at every frame, so the ``flow`` pass of frame t (pixels to
frame t + 1) is the motion the next frame shows. Frames are sharp by default (the flow comes from
the frame's own render); with ``motionBlur`` each frame is blurred over the shutter and its flow
comes from an extra 1-sample render; ``{key}.frame{t:03d}.*`` holds every pass of frame t and the JSON
``frames: [{frame, time, intrinsics, extrinsics, objects}]`` keeps each object's id in every frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from synth_contract import classes
from synth_contract.passes import PASS_EXT
from synth_render import views
from synth_render.annotate import dataset_vocabulary
from synth_render.scene import Camera, Scene

_FILE = views._FILE
_FRAME0_EXTS = (*views._VIEW0_EXTS, PASS_EXT["flow"])


@dataclass(frozen=True)
class FrameParams:
    count: int = 1
    fps: float = 24.0
    camera_degrees_per_frame: float = 0.0
    motion_blur: bool = False


def params_from_spec(frames: Any) -> FrameParams:
    if frames is None:
        return FrameParams()
    return FrameParams(count=int(frames.count), fps=float(frames.fps),
                       camera_degrees_per_frame=float(frames.camera_degrees_per_frame),
                       motion_blur=bool(frames.motion_blur))


def member(frame: int, ext: str) -> str:
    """``frame003.png``, ``frame003.flow.exr``: a frame's member extension after the key."""
    return f"frame{frame:03d}.{ext}"


def frame_camera(main: Camera, params: FrameParams, t: int) -> Camera:
    """The camera at frame ``t`` (``main`` orbited about its look-at point)."""
    if not params.camera_degrees_per_frame or t == 0:
        return main
    a = math.radians(params.camera_degrees_per_frame * t)
    d = np.subtract(main.location, main.look_at)
    c, s = math.cos(a), math.sin(a)
    rotated = (c * d[0] - s * d[1], s * d[0] + c * d[1], d[2])
    loc = tuple(round(float(v), 9) + 0.0 for v in np.add(main.look_at, rotated))
    return replace(main, location=loc)  # type: ignore[arg-type]


def frame_cameras(main: Camera, params: FrameParams) -> tuple[Camera, ...]:
    return tuple(frame_camera(main, params, t) for t in range(max(1, params.count)))


def scene_at(scene: Scene, t: int) -> Scene:
    """The scene at frame ``t``: every object moved by ``t`` times its velocity."""
    if t == 0:
        return scene
    objs = tuple(replace(o, location=_moved(o.location, o.velocity, t)) if any(o.velocity) else o
                 for o in scene.objects)
    return replace(scene, objects=objs)  # type: ignore[arg-type]


def _moved(location: tuple[float, float, float], velocity: tuple[float, float, float],
           t: int) -> tuple[float, float, float]:
    x, y, z = (float(a) + t * float(v) for a, v in zip(location, velocity, strict=True))
    return (x, y, z)


def cameras_for(spec: Any, scene: Scene) -> tuple[Camera, ...]:
    """The camera of every frame of a sample of ``spec`` (just ``scene.camera`` for stills)."""
    return frame_cameras(scene.camera, params_from_spec(getattr(spec.render, "frames", None)))


def annotate_frames(spec: Any, scene: Scene, cameras: tuple[Camera, ...], out: Any, meta: dict[str, Any],
                    arrays: dict[str, np.ndarray], *, png: Callable[[np.ndarray], bytes]) -> None:
    """``meta['frames']`` and the encoded ``frame{t:03d}.*`` members of frames 1.. (kept in ``arrays``)."""
    if len(cameras) < 2:
        return
    params = params_from_spec(spec.render.frames)
    passes = {str(p) for p in spec.render.passes}
    width, height = int(meta["render"]["width"]), int(meta["render"]["height"])
    files, entries = views.view_entries(
        scene=scene, cameras=cameras, outputs=list(out.frames), passes=passes, width=width, height=height,
        depth_format=str(spec.render.depth_format), class_ids=classes.class_ids(dataset_vocabulary(spec)), png=png,
        scenes=tuple(scene_at(scene, t) for t in range(len(cameras))), member_of=member, field="frame")
    for t, e in enumerate(entries):
        e["time"] = round(t / params.fps, 6)
    entries[0]["objects"] = [{k: o[k] for k in views._VIEW_OBJECT_KEYS if k in o} for o in meta["objects"]]
    meta["frames"] = entries
    meta["render"]["frames"] = {"count": len(cameras), "fps": params.fps, "motionBlur": params.motion_blur,
                                "cameraDegreesPerFrame": params.camera_degrees_per_frame}
    for ext, data in files.items():
        arrays[_FILE + ext] = np.frombuffer(data, dtype=np.uint8)


def add_files(meta: dict[str, Any], arrays: dict[str, np.ndarray], files: dict[str, bytes]) -> None:
    """The kept attempt's frame members: frame 0 copies the top-level files, frames 1.. from ``arrays``."""
    views.add_member_files(meta, arrays, files, field="frame", view0_exts=_FRAME0_EXTS, member_of=member)
