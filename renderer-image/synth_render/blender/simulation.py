"""Draw baked simulations (``synth_render.simulation``) in Blender and label their volumes.

A liquid is its particles turned into a surface by geometry nodes (Mesh to Points, Points to
Volume, Volume to Mesh) with a water material: its visible surface writes the object index
pass like any mesh. Smoke and fire are the particles as a fog volume (Points to Volume) with a
Principled Volume shader (fire glows by blackbody temperature); volumes write no index pass,
so their pixels are labelled here, after the render, where the volume's optical depth in front
of the first surface reaches ``volume_labels.OPTICAL_DEPTH_LABEL``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synth_render import post, simulation, volume_labels
from synth_render.blender.guard import bare_material
from synth_render.scene import Scene, SceneObject


def _state(r: Any) -> dict[str, Any]:
    st = getattr(r, "_sim_state", None)
    if st is None:
        st = {"blocks": [], "drawn": [], "bakes": {}}
        r._sim_state = st
    return st


def _volume_material(bpy: Any, obj: SceneObject) -> Any:
    sim = obj.simulation
    assert sim is not None
    mat, out = bare_material(bpy, "synth-sim-volume")
    nt = mat.node_tree
    vol = nt.nodes.new("ShaderNodeVolumePrincipled")
    vol.inputs["Color"].default_value = (*sim.material.color, 1.0)
    vol.inputs["Density"].default_value = sim.density
    if sim.temperature > 0:
        vol.inputs["Blackbody Intensity"].default_value = 1.0
        vol.inputs["Temperature"].default_value = sim.temperature
    nt.links.new(vol.outputs["Volume"], out.inputs["Volume"])
    return mat


def _node_group(bpy: Any, mat: Any, radius: float, *, surface: bool) -> Any:
    ng = bpy.data.node_groups.new("synth-sim", "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    gi = ng.nodes.new("NodeGroupInput")
    go = ng.nodes.new("NodeGroupOutput")
    m2p = ng.nodes.new("GeometryNodeMeshToPoints")
    p2v = ng.nodes.new("GeometryNodePointsToVolume")
    p2v.inputs["Resolution Mode"].default_value = "Size"
    p2v.inputs["Voxel Size"].default_value = radius / (2.5 if surface else 2.0)
    p2v.inputs["Radius"].default_value = radius
    p2v.inputs["Density"].default_value = 1.0
    setm = ng.nodes.new("GeometryNodeSetMaterial")
    setm.inputs["Material"].default_value = mat
    ng.links.new(gi.outputs[0], m2p.inputs["Mesh"])
    ng.links.new(m2p.outputs["Points"], p2v.inputs["Points"])
    if surface:
        v2m = ng.nodes.new("GeometryNodeVolumeToMesh")
        v2m.inputs["Resolution Mode"].default_value = "Grid"
        v2m.inputs["Threshold"].default_value = 0.3
        smooth = ng.nodes.new("GeometryNodeSetShadeSmooth")
        ng.links.new(p2v.outputs["Volume"], v2m.inputs["Volume"])
        ng.links.new(v2m.outputs["Mesh"], smooth.inputs["Mesh"])
        ng.links.new(smooth.outputs["Mesh"], setm.inputs["Geometry"])
    else:
        ng.links.new(p2v.outputs["Volume"], setm.inputs["Geometry"])
    ng.links.new(setm.outputs["Geometry"], go.inputs[0])
    return ng


def add(r: Any, obj: SceneObject) -> None:
    """Bake (or take from the worker cache) ``obj.simulation`` and draw it as object ``obj.id``."""
    sim = obj.simulation
    assert sim is not None
    bpy = r._bpy
    st = _state(r)
    key = sim.cache_key()
    if key in st["bakes"]:  # fire: flame and smoke objects draw the same bake
        res, hit = st["bakes"][key][0], True
    else:
        res, hit = simulation.worker_cache().get(sim)
        st["bakes"][key] = (res, hit)
    pts = simulation.particles_for(sim, res)
    surface = sim.kind == "liquid"
    radius = res.radius * (2.2 if surface else 1.1)
    mat = r._material(sim.material) if surface else _volume_material(bpy, obj)
    if not surface:
        r._sample_materials.append(mat)
        # Ray-marched (biased) volumes: Blender 5's unbiased null scattering builds a majorant
        # octree for every heterogeneous volume, ~5 s per plume on a CPU against ~0.05 s here.
        st.setdefault("biased", bool(r._scene.cycles.volume_biased))
        r._scene.cycles.volume_biased = True
    mesh = bpy.data.meshes.new("synth-sim")
    mesh.from_pydata([tuple(map(float, p)) for p in pts], [], [])
    ng = _node_group(bpy, mat, radius, surface=surface)
    st["blocks"].extend([("meshes", mesh), ("node_groups", ng)])
    o = bpy.data.objects.new("synth-sim", mesh)
    mod = o.modifiers.new("synth-sim", "NODES")
    mod.node_group = ng
    o.pass_index = obj.id
    r._sample_objects.append(o)
    r._scene.collection.objects.link(o)
    st["drawn"].append((obj, pts, radius, {**res.report(cache_hit=hit), "kind": sim.kind,
                                           "scenario": sim.scenario, "tier": sim.tier}))


def label(r: Any, scene: Scene, index: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """The index pass with smoke, then fire, pixels written where their volume is dense enough."""
    st = _state(r)
    h, w = index.shape
    k = post.intrinsics(scene.camera, w, h)
    e = post.extrinsics(scene.camera)
    out = index.copy()
    vols = [d for d in st["drawn"] if d[0].simulation is not None and d[0].simulation.kind != "liquid"]
    for obj, pts, radius, _ in sorted(vols, key=lambda d: d[0].cls == "fire"):
        sim = obj.simulation
        mask = volume_labels.volume_mask(pts, radius, max(sim.density, 1.0 if sim.temperature else 0.0), k, e, depth)
        out[mask] = float(obj.id)
    return out


def reports(r: Any) -> tuple[dict[str, Any], ...]:
    """One entry per simulated object of the sample just built (``id`` added)."""
    return tuple({**rep, "id": obj.id} for obj, _, _, rep in _state(r)["drawn"])


def clear(r: Any) -> None:
    """Remove this sample's simulation meshes and node groups."""
    st = _state(r)
    d = r._bpy.data
    for kind, block in st["blocks"]:
        getattr(d, kind).remove(block, do_unlink=True)
    st["blocks"].clear()
    if "biased" in st:
        r._scene.cycles.volume_biased = st.pop("biased")
    st["drawn"].clear()
    st["bakes"].clear()
