"""The renderer interface: the :class:`Renderer` protocol, what it is asked and what it returns.

``sample.render_sample`` drives any object with this shape; ``synth_render.blender.renderer``
is the Blender implementation and the tests have a fake one. Pure: no Blender here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from synth_render.scene import Scene


@dataclass(frozen=True)
class Extras:
    """Ground truth beyond the base passes (``synth_render.groundtruth`` explains each)."""

    albedo: bool = False
    aovs: bool = False
    flow: bool = False
    amodal_groups: tuple[tuple[int, ...], ...] = ()
    save_scene: str = "none"  # none | glb | blend


@dataclass(frozen=True)
class ViewOutput:
    """The arrays of one extra view (the same passes as view 0's main render)."""

    rgb: np.ndarray
    depth: np.ndarray
    index: np.ndarray
    normals: np.ndarray | None
    albedo: np.ndarray | None
    roughness: np.ndarray | None
    metallic: np.ndarray | None
    render_seconds: float


@dataclass(frozen=True)
class FrameOutput(ViewOutput):
    """The arrays of one extra frame: a view's passes plus the frame's flow."""

    flow: np.ndarray | None


@dataclass(frozen=True)
class RenderOutput:
    """The arrays of one render (rows top to bottom) and how it was made."""

    rgb: np.ndarray  # (H, W, 3) float32, linear
    depth: np.ndarray  # (H, W) float32, metres along the camera axis; >= 1e9 where nothing was hit
    index: np.ndarray  # (H, W) float32, object pass index
    normals: np.ndarray | None  # (H, W, 3) float32, world space
    render_seconds: float
    spp: int
    albedo: np.ndarray | None = None  # (H, W, 3) float32, linear base colour (shader AOV of the Principled input)
    roughness: np.ndarray | None = None  # (H, W) float32, shader AOV
    metallic: np.ndarray | None = None  # (H, W) float32, shader AOV
    flow: np.ndarray | None = None  # (H, W, 2) float32, pixels to the next frame (+u right, +v down)
    amodal: tuple[np.ndarray, ...] = ()  # object-index maps of the amodal renders (one per group)
    scene_file: bytes | None = None  # the sample's scene as .glb or .blend
    aux_seconds: float = 0.0  # time of the extra ground-truth renders and the scene export
    views: tuple[ViewOutput, ...] = ()  # views 1.. (multi-view samples)
    frames: tuple[FrameOutput, ...] = ()  # frames 1.. (sequences)
    simulations: tuple[dict[str, Any], ...] = ()  # blender.simulation.reports: one per simulated object


class Renderer(Protocol):
    """Renders one :class:`Scene` at a time (a long-lived scene per worker).

    ``views``: the cameras of views 1.. (multi-view samples); ``frames``: the camera of every frame
    of a sequence, frame 0 first; ``frame_motion_blur``: blur the frames over the shutter.
    """

    device: str
    engine_version: str

    def render(self, scene: Scene, *, width: int, height: int, spp: int, denoise: bool, seed: int,
               normals: bool = True, extras: Extras | None = None, views: tuple[Any, ...] = (),
               frames: tuple[Any, ...] = (), frame_motion_blur: bool = False) -> RenderOutput: ...
