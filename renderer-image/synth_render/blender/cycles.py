"""Cycles for one worker: the device (OptiX, CUDA or the CPU) and the render settings.

``configure`` sets what stays for the worker's life (light paths, threads, tiles, persistent data on
a GPU, the passes of the view layer, the multi-layer EXR the render is written to); ``per_render``
what each render sets again (size, samples, seed, denoiser).
"""

from __future__ import annotations

import os
from typing import Any


def choose_device(bpy: Any, requested: str) -> tuple[str, str]:
    """Pick the Cycles device: auto tries OptiX, then CUDA, then the CPU. Returns (kind, label)."""
    if requested == "cpu":
        return "CPU", "CPU"
    prefs = bpy.context.preferences.addons["cycles"].preferences
    kinds = ["OPTIX", "CUDA"] if requested == "auto" else [requested.upper()]
    for kind in kinds:
        try:
            prefs.compute_device_type = kind
            prefs.get_devices()
        except (TypeError, ValueError, RuntimeError):
            continue
        found = [d for d in prefs.devices if d.type == kind]
        if found:
            for d in prefs.devices:
                d.use = d.type == kind
            return kind, f"{kind}:{found[0].name}"
    if requested != "auto":
        raise RuntimeError(f"render.device {requested!r} requested but no {requested.upper()} device is available")
    return "CPU", "CPU"


def configure(sc: Any, *, kind: str, exr_path: str) -> None:
    """The worker-long settings of scene ``sc`` rendering on device ``kind`` into ``exr_path``."""
    sc.cycles.device = "CPU" if kind == "CPU" else "GPU"
    sc.cycles.use_adaptive_sampling = False
    sc.cycles.use_animated_seed = False
    # Light paths: enough for glass, liquids and glossy paint; cheaper than the defaults.
    sc.cycles.max_bounces = 6
    sc.cycles.diffuse_bounces = 2
    sc.cycles.glossy_bounces = 2
    sc.cycles.transmission_bounces = 6
    sc.cycles.transparent_max_bounces = 2
    sc.cycles.volume_bounces = 0
    sc.cycles.volume_step_rate = 4.0
    sc.cycles.volume_max_steps = 64
    # Many small renders: one tile per frame (auto tiling exists for frames larger than the tile and
    # writes tiles to disk); on a GPU the synced scene (kernels, textures, BVH where it can) stays
    # on the device between renders, which Cycles recommends when rendering many frames in one session.
    sc.cycles.use_auto_tile = False
    sc.render.use_persistent_data = persistent_data(kind)
    if kind != "CPU" and hasattr(sc.cycles, "denoising_use_gpu"):
        sc.cycles.denoising_use_gpu = True
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    if 0 < allowed < (os.cpu_count() or allowed):  # pinned (local mode): render on our cores only
        sc.render.threads_mode = "FIXED"
        sc.render.threads = allowed
    sc.render.use_compositing = False
    sc.render.use_sequencer = False
    sc.render.resolution_percentage = 100
    sc.render.film_transparent = False
    sc.view_settings.view_transform = "Standard"
    sc.view_settings.look = "None"
    sc.frame_current = 1
    vl = sc.view_layers[0]
    vl.use_pass_z = True
    vl.use_pass_object_index = True
    vl.use_pass_normal = True
    fmt = sc.render.image_settings
    fmt.file_format = "OPEN_EXR"
    fmt.media_type = "MULTI_LAYER_IMAGE"
    fmt.color_depth = "32"
    fmt.exr_codec = "NONE"
    sc.render.filepath = exr_path


def persistent_data(kind: str) -> bool:
    """Whether the worker keeps Cycles' synced data between renders: on a GPU only.

    On the CPU every render syncs the scene afresh, which is what makes a warm worker's render the
    same bytes as a fresh process's (``blender.normals``); re-render exactness on a GPU is not
    claimed (not measured: no GPU in CI).
    """
    return kind != "CPU"


def per_render(sc: Any, *, kind: str, width: int, height: int, spp: int, seed: int, denoise: bool,
               normals: bool) -> None:
    """Size, samples, seed, denoiser and the normal pass of the next render."""
    sc.render.resolution_x, sc.render.resolution_y = width, height
    sc.cycles.samples = spp
    sc.cycles.seed = seed % (2**31 - 1)
    sc.cycles.use_denoising = denoise
    if denoise:
        sc.cycles.denoiser = "OPTIX" if kind == "OPTIX" else "OPENIMAGEDENOISE"
        # Albedo and normal guides used as they are: the ACCURATE prefilter denoises them first,
        # two more OIDN runs that cost a third of a 128-px frame's CPU time.
        sc.cycles.denoising_prefilter = "FAST"
    sc.view_layers[0].use_pass_normal = normals
