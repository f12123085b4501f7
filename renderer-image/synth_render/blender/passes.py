"""The render passes: shader AOVs, the extra 1-sample ground-truth renders, the EXR read back.

Every render writes one multi-layer EXR (combined, depth, object index, normals, and the AOVs or
the vector pass when asked); :func:`read_layers` reads it as arrays and removes it. Flow of a
moving still and the amodal masks come from cheap extra renders (:func:`aux_renders`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from synth_render.blender.guard import bare_material
from synth_render.rendering import Extras

AOVS = ("roughness", "metallic")
AOV_SOURCES = {"albedo": ("Base Color", "COLOR"), "roughness": ("Roughness", "VALUE"),
               "metallic": ("Metallic", "VALUE")}
"""Shader AOVs fed from the Principled BSDF inputs (the albedo AOV is the exact base colour)."""

FLOW_SIGN = (-1.0, 1.0)
"""Forward flow (u right, v down) = (FLOW_SIGN[0] * Z, FLOW_SIGN[1] * W) of Cycles' vector pass:
its (Z, W) points from the current position to the previous frame's, y up (measured); checked
against a known translation in the tests."""


def set_extra_passes(scene: Any, ex: Extras) -> None:
    """Switch the view layer's albedo and roughness/metallic AOVs on or off."""
    vl = scene.view_layers[0]
    want = {"albedo"} if ex.albedo else set()
    if ex.aovs:
        want.update(AOVS)
    have = {a.name: a for a in vl.aovs}
    for name, (_, kind) in AOV_SOURCES.items():
        if name in want and name not in have:
            aov = vl.aovs.add()
            aov.name, aov.type = name, kind
        elif name not in want and name in have:
            vl.aovs.remove(have[name])


def attach_aovs(objects: list[Any]) -> None:
    """Feed every material's Principled base colour/roughness/metallic (value or texture) to the AOVs."""
    seen: set[int] = set()
    for obj in objects:
        for slot in getattr(obj, "material_slots", ()):
            mat = slot.material
            if mat is None or id(mat) in seen or mat.node_tree is None:
                continue
            seen.add(id(mat))
            nt = mat.node_tree
            bsdf = next((n for n in nt.nodes if n.type == "BSDF_PRINCIPLED"), None)
            for name, (socket, kind) in AOV_SOURCES.items():
                node = nt.nodes.new("ShaderNodeOutputAOV")
                node.aov_name = name
                dst = node.inputs["Color" if kind == "COLOR" else "Value"]
                src = bsdf.inputs[socket] if bsdf is not None else None
                if src is not None and src.is_linked:
                    nt.links.new(src.links[0].from_socket, dst)
                elif src is not None:
                    dst.default_value = src.default_value
                else:
                    dst.default_value = (0.0, 0.0, 0.0, 1.0) if kind == "COLOR" else 0.0


def aux_renders(r: Any, ex: Extras, *, moving: bool) -> dict[str, Any]:
    """1-sample renders of renderer ``r`` for flow (motion blur off) and amodal masks (one per object group)."""
    if not ex.amodal_groups and not (ex.flow and moving):
        return {}
    sc, vl = r._scene, r._scene.view_layers[0]
    saved = (sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur, sc.cycles.max_bounces,
             vl.use_pass_normal, vl.use_pass_z, sc.render.use_persistent_data)
    sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur = 1, False, False
    sc.cycles.max_bounces = 0
    vl.use_pass_normal = vl.use_pass_z = False
    set_extra_passes(sc, Extras())
    # Cheap: no world (no fog, no HDRI), one emission-free shader for everything (no texture
    # evaluation, no light sampling), and Cycles keeps the scene between the aux renders.
    world, sc.world = sc.world, None
    vl.material_override = _aux_material(r)
    sc.render.use_persistent_data = True
    out: dict[str, Any] = {}
    parts = [o for o in r._sample_objects if o.type == "MESH"]
    try:
        if ex.flow and moving:
            vl.use_pass_vector = True
            r._render_quiet()
            out["flow"] = flow_of(read_layers(r._exr))
            vl.use_pass_vector = False
        amodal = []
        for group in ex.amodal_groups:
            members = set(group)
            for o in parts:
                o.visible_camera = o.pass_index in members
            r._render_quiet()
            amodal.append(next(iter(read_layers(r._exr)["Object Index"].values())))
        out["amodal"] = amodal
    finally:
        for o in parts:
            o.visible_camera = True
        vl.use_pass_vector = False
        sc.world, vl.material_override = world, None
        (sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur, sc.cycles.max_bounces,
         vl.use_pass_normal, vl.use_pass_z, sc.render.use_persistent_data) = saved
    return out


def _aux_material(r: Any) -> Any:
    """A black emission material (created once per renderer): shading the aux renders costs nothing."""
    if getattr(r, "_aux_mat", None) is None:
        mat, out = bare_material(r._bpy, "synth-aux")
        nt = mat.node_tree
        em = nt.nodes.new("ShaderNodeEmission")
        em.inputs["Strength"].default_value = 0.0
        nt.links.new(em.outputs["Emission"], out.inputs["Surface"])
        r._aux_mat = mat
    return r._aux_mat


def read_layers(path: str) -> dict[str, dict[str, np.ndarray]]:
    """The render's EXR as {pass name: {channel: (H, W) float32}}; the file is removed."""
    import OpenEXR

    parts: dict[str, dict[str, np.ndarray]] = {}
    with OpenEXR.File(path, separate_channels=True) as f:
        for p in f.parts:
            parts[p.name().split(".", 1)[-1]] = {k.rsplit(".", 1)[-1]: np.array(v.pixels)
                                                 for k, v in p.channels.items()}
    os.unlink(path)
    return parts


def flow_of(layers: dict[str, dict[str, np.ndarray]]) -> np.ndarray | None:
    """Flow to the next frame in image axes (v down) from the vector pass, or None without one."""
    v = layers.get("Vector")
    if v is None:
        return None
    return np.stack([FLOW_SIGN[0] * v["Z"], FLOW_SIGN[1] * v["W"]], axis=-1).astype(np.float32)


def arrays(layers: dict[str, dict[str, np.ndarray]], *, normals: bool) -> dict[str, np.ndarray]:
    """The passes of one render as arrays: rgb, depth, index, and normals/albedo/AOVs/flow when present."""
    comb = layers["Combined"]
    out = {
        "rgb": np.stack([comb["R"], comb["G"], comb["B"]], axis=-1),
        "depth": layers["Depth"]["V"] if "V" in layers["Depth"] else next(iter(layers["Depth"].values())),
        "index": next(iter(layers["Object Index"].values())),
    }
    if normals and "Normal" in layers:
        n = layers["Normal"]
        out["normals"] = np.stack([n["X"], n["Y"], n["Z"]], axis=-1)
    if "albedo" in layers:
        d = layers["albedo"]
        out["albedo"] = np.stack([d["R"], d["G"], d["B"]], axis=-1)
    for name in AOVS:
        if name in layers:
            out[name] = next(iter(layers[name].values()))
    flow = flow_of(layers)  # sequences (blender.frames): the frame's own vector pass
    if flow is not None:
        out["flow"] = flow
    return out


def read_exr(path: str, *, normals: bool) -> dict[str, np.ndarray]:
    """:func:`arrays` of the EXR at ``path`` (removed)."""
    return arrays(read_layers(path), normals=normals)
