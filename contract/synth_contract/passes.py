"""Which files a sample carries, given the spec: one place for pass names and tar extensions.

The worker (checkpoint checks), ``synthctl validate`` (members present), the capacity plan
(bytes per pass) and the exporters all ask this module instead of keeping their own tables.
"""

from __future__ import annotations

from typing import Any

PASS_EXT: dict[str, str] = {
    "rgb": "png",
    "depth": "depth.png",
    "segmentation": "seg.png",
    "normals": "normals.png",
    "albedo": "albedo.png",
    "roughness": "roughness.png",
    "metallic": "metallic.png",
    "flow": "flow.exr",
    "semantic": "sem.png",
}
"""Tar member extension of each pass (after the key); depth is ``depth.exr`` with depthFormat exr."""

PASS_WEIGHTS: dict[str, float] = {
    "rgb": 1.0,
    "depth": 0.5,
    "segmentation": 0.05,
    "normals": 0.8,
    "albedo": 0.7,
    "roughness": 0.015,
    "metallic": 0.005,
    "flow": 0.3,
    "semantic": 0.005,
    "depth.exr": 0.6,
    "glb": 0.1,
    "blend": 1.0,
}
"""Relative stored size of each pass against the RGB PNG, used to split bytesPerSample over the
passes. The new passes are measured on the default preset (512x512) by
``benchmarks/bench_passes.py``: albedo 246 kB, depth.exr 196 kB, glb 32 kB, roughness 4.5 kB, sem
1.3 kB, metallic 1.2 kB against RGB 344 kB; flow is 0.01 of RGB on still scenes and ~0.5 on moving
ones (0.3 assumed). The first four keep the values the plan used before."""


OPTIONAL_MEMBERS = frozenset({"txt"})
"""Members ``synthctl validate`` does not require: datasets rendered before captions existed lack them."""


def pass_ext(name: str, *, depth_format: str = "png16") -> str:
    if name == "depth" and str(depth_format) == "exr":
        return "depth.exr"
    return PASS_EXT[name]


def still_members(spec: Any) -> set[str]:
    """Every tar member extension of one camera of one still (``json`` always; ``txt`` with a
    captioner); ``multiview.sample_members`` adds the views and frames of a sample's category."""
    render = spec.render
    out = {"json", *(pass_ext(str(p), depth_format=str(render.depth_format)) for p in render.passes)}
    if str(render.captioner) != "none":
        out.add("txt")
    save = str(spec.output.save_scene)
    if save != "none":
        out.add(save)
    return out


def still_bytes_weights(spec: Any) -> dict[str, float]:
    """Relative stored size of each enabled pass of one camera of one still (keyed by pass name, plus
    ``scene`` for the scene file); the JSON and the caption are a few kB and ride with ``rgb``.
    ``multiview.bytes_weights`` adds the views and frames of an average sample."""
    render = spec.render
    out: dict[str, float] = {}
    for p in render.passes:
        name = str(p)
        key = "depth.exr" if name == "depth" and str(render.depth_format) == "exr" else name
        out[name] = PASS_WEIGHTS.get(key, 1.0)
    if str(spec.output.save_scene) != "none":
        out["scene"] = PASS_WEIGHTS[str(spec.output.save_scene)]
    return out
