"""The render driver: the one module that turns a scene description into Blender data.

One :class:`BlenderRenderer` lives for the whole shard (one Blender process, one base scene).
Per sample it links the scene's objects, lights and materials, renders once with Cycles into a
multi-layer EXR (combined, depth, object index, normals), reads the passes back as arrays and
removes every per-sample data-block again, so that memory stays flat over thousands of samples.
Primitive meshes are built once (``bmesh``, no operators) and shared by all samples.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_render import post
from synth_render._bpy import bare_material, require_bpy
from synth_render._bpy import quiet_stdout as _quiet_stdout
from synth_render.blender_content import (
    METRIC_PATTERNS,
    EnvironmentWorld,
    TextureSets,
    build_shape,
    metric_pattern,
)
from synth_render.scene import SHAPE_BOUNDS, Light, Material, Part, Scene, Shape, Vec3
from synth_render.transforms import trs

_TEXTURES = {"noise": ("ShaderNodeTexNoise", "Fac"), "checker": ("ShaderNodeTexChecker", "Fac"),
             "voronoi": ("ShaderNodeTexVoronoi", "Distance"), "wave": ("ShaderNodeTexWave", "Fac"),
             "magic": ("ShaderNodeTexMagic", "Fac")}
_AOVS = ("roughness", "metallic")
_AOV_SOURCES = {"albedo": ("Base Color", "COLOR"), "roughness": ("Roughness", "VALUE"),
                "metallic": ("Metallic", "VALUE")}
"""Shader AOVs fed from the Principled BSDF inputs (the albedo AOV is the exact base colour)."""


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
    views: tuple[Any, ...] = ()  # blender_views.ViewOutput of views 1.. (multi-view samples)
    frames: tuple[Any, ...] = ()  # blender_frames.FrameOutput of frames 1.. (sequences)
    simulations: tuple[dict[str, Any], ...] = ()  # blender_sim.reports: one per simulated object


@dataclass(frozen=True)
class Extras:
    """Ground truth beyond the base passes (``synth_render.groundtruth`` explains each)."""

    albedo: bool = False
    aovs: bool = False
    flow: bool = False
    amodal_groups: tuple[tuple[int, ...], ...] = ()
    save_scene: str = "none"  # none | glb | blend


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


class BlenderRenderer:
    """A long-lived Blender scene that renders one :class:`Scene` at a time."""

    def __init__(self, *, device: str = "auto", engine: str = "cycles", workdir: str | None = None,
                 quiet: bool = True) -> None:
        bpy = self._bpy = require_bpy()
        self._quiet = quiet
        with _quiet_stdout(quiet):
            bpy.ops.wm.read_factory_settings(use_empty=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="synth-render-", dir=workdir)
        sc = self._scene = bpy.context.scene
        if engine != "cycles":
            raise ValueError(f"engine {engine!r} is not supported by this renderer build (use cycles)")
        sc.render.engine = "CYCLES"
        with _quiet_stdout(quiet):  # device probing prints CUDA/HIP loader warnings
            kind, self.device = choose_device(bpy, device)
        sc.cycles.device = "CPU" if kind == "CPU" else "GPU"
        self._gpu_kind = kind
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
        sc.render.use_persistent_data = False
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
        self._exr = os.path.join(self._tmp.name, "frame.exr")
        sc.render.filepath = self._exr
        cam_data = bpy.data.cameras.new("synth-camera")
        cam_data.sensor_fit = "HORIZONTAL"
        cam_data.clip_start = 0.05
        cam_data.clip_end = 1000.0
        self._camera = bpy.data.objects.new("synth-camera", cam_data)
        sc.collection.objects.link(self._camera)
        sc.camera = self._camera
        self._world = self._make_world()
        sc.world = self._world
        self._env = EnvironmentWorld(bpy, self._world, self._world_bg, self._world_out)
        self._textures = TextureSets(bpy)
        # Every shape's unit mesh, built once and shared by all samples.
        self._meshes: dict[str, Any] = {name: build_shape(bpy, name) for name in SHAPE_BOUNDS}
        self._sample_objects: list[Any] = []
        self._sample_lights: list[Any] = []
        self._sample_materials: list[Any] = []
        self._sample_actions: list[Any] = []
        self._assets: Any = None  # blender_assets.AssetImporter, made for the first library object
        self.engine_version = bpy.app.version_string

    # ------------------------------------------------------------------ public

    def render(self, scene: Scene, *, width: int, height: int, spp: int, denoise: bool, seed: int,
               normals: bool = True, extras: Extras | None = None, views: tuple[Any, ...] = (),
               frames: tuple[Any, ...] = (), frame_motion_blur: bool = False) -> RenderOutput:
        """Render a scene and return its passes; the Blender scene is clean again afterwards.

        ``views``: more cameras (``scene.Camera``) to render the same built scene from (multi-view).
        ``frames``: the camera of every frame of a sequence (``blender_frames``), frame 0 first;
        ``frame_motion_blur``: blur its frames over the shutter.
        """
        ex = extras or Extras()
        sc = self._scene
        sc.render.resolution_x, sc.render.resolution_y = width, height
        sc.cycles.samples = spp
        sc.cycles.seed = seed % (2**31 - 1)
        sc.cycles.use_denoising = denoise
        if denoise:
            sc.cycles.denoiser = "OPTIX" if self._gpu_kind == "OPTIX" else "OPENIMAGEDENOISE"
            # Albedo and normal guides used as they are: the ACCURATE prefilter denoises them first,
            # two more OIDN runs that cost a third of a 128-px frame's CPU time.
            sc.cycles.denoising_prefilter = "FAST"
        self._scene.view_layers[0].use_pass_normal = normals
        self._set_extra_passes(ex)
        aux: dict[str, Any] = {}
        sims: tuple[dict[str, Any], ...] = ()
        # Multi-view: Cycles keeps the synced scene (BVH, shaders, images) from view 0 to the last view.
        sc.render.use_persistent_data = bool(views) or len(frames) > 1
        try:
            self._build(scene)
            if len(frames) > 1:
                from synth_render import blender_frames

                blender_frames.prepare(self, scene, tuple(frames), flow=ex.flow, motion_blur=frame_motion_blur)
            if ex.aovs or ex.albedo:
                self._attach_aovs()
            t0 = time.perf_counter()
            with _quiet_stdout(self._quiet):
                self._bpy.ops.render.render(write_still=True)
            seconds = time.perf_counter() - t0
            out = self._read_exr(normals=normals)
            if any(o.simulation is not None for o in scene.objects):
                from synth_render import blender_sim

                out["index"] = blender_sim.label(self, scene, out["index"], out["depth"])
                sims = blender_sim.reports(self)
            t1 = time.perf_counter()
            aux = self._aux_renders(ex, moving=bool(self._scene.render.use_motion_blur))
            if ex.save_scene != "none":
                aux["scene_file"] = self._save_scene(ex.save_scene)
            aux_seconds = time.perf_counter() - t1
            if views:
                from synth_render.blender_views import render_views

                aux["views"] = render_views(self, tuple(views), normals=normals)
            if len(frames) > 1:
                aux["frames"] = blender_frames.render_frames(self, len(frames), normals=normals, flow=ex.flow,
                                                             motion_blur=frame_motion_blur)
        finally:
            if len(frames) > 1:
                from synth_render import blender_frames

                blender_frames.finish(self)
            self._clear()
            self._set_extra_passes(Extras())
            sc.render.use_persistent_data = False
        flow = aux.get("flow", out.get("flow"))  # sequences: frame 0's own vector pass
        if ex.flow and flow is None:  # nothing moves: the flow is zero everywhere
            flow = np.zeros((height, width, 2), dtype=np.float32)
        return RenderOutput(rgb=out["rgb"], depth=out["depth"], index=out["index"], normals=out.get("normals"),
                            render_seconds=seconds, spp=spp, albedo=out.get("albedo"),
                            roughness=out.get("roughness"), metallic=out.get("metallic"), flow=flow,
                            amodal=tuple(aux.get("amodal", ())), scene_file=aux.get("scene_file"),
                            aux_seconds=aux_seconds, views=tuple(aux.get("views", ())),
                            frames=tuple(aux.get("frames", ())), simulations=sims)

    def datablock_counts(self) -> dict[str, int]:
        """How many data-blocks of each kind exist (flat across samples when nothing leaks)."""
        d = self._bpy.data
        # HDRIs and texture images are kept for the worker's life (one load per file): not per-sample data.
        kept = {"images": self._env.cached + self._textures.cached}
        return {k: len(getattr(d, k)) - kept.get(k, 0)
                for k in ("objects", "meshes", "materials", "lights", "images", "worlds", "actions", "node_groups",
                          "cameras", "textures")}

    def close(self) -> None:
        self._tmp.cleanup()

    # ------------------------------------------------------------------ building

    def _make_world(self) -> Any:
        w = self._bpy.data.worlds.new("synth-world")
        if w.node_tree is None:  # Blender < 5.0 creates node trees on request only
            w.use_nodes = True
        nt = w.node_tree
        out = next(n for n in nt.nodes if n.type == "OUTPUT_WORLD")
        bg = next((n for n in nt.nodes if n.type == "BACKGROUND"), None) or nt.nodes.new("ShaderNodeBackground")
        nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
        vol = nt.nodes.new("ShaderNodeVolumePrincipled")
        self._world_bg, self._world_vol, self._world_out = bg, vol, out
        return w

    def _set_world(self, scene: Scene) -> None:
        w = scene.world
        self._env.apply(w)
        self._textures.begin_sample()
        self._world_bg.inputs["Color"].default_value = (*w.color, 1.0)
        self._world_bg.inputs["Strength"].default_value = w.strength
        links = self._world.node_tree.links
        for link in list(self._world_out.inputs["Volume"].links):
            links.remove(link)
        if w.fog_density > 0:
            self._world_vol.inputs["Density"].default_value = w.fog_density
            self._world_vol.inputs["Color"].default_value = (*w.fog_color, 1.0)
            links.new(self._world_vol.outputs["Volume"], self._world_out.inputs["Volume"])

    def _mesh(self, primitive: Shape) -> Any:
        return self._meshes[primitive]

    def _material(self, m: Material, scale: Vec3 = (1.0, 1.0, 1.0)) -> Any:
        mat = self._bpy.data.materials.new("synth-mat")
        self._sample_materials.append(mat)
        if mat.node_tree is None:
            mat.use_nodes = True
        nt = mat.node_tree
        bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
        bsdf.inputs["Roughness"].default_value = m.roughness
        bsdf.inputs["Metallic"].default_value = m.metallic
        bsdf.inputs["IOR"].default_value = m.ior
        bsdf.inputs["Transmission Weight"].default_value = m.transmission
        if m.emission > 0:
            bsdf.inputs["Emission Color"].default_value = (*m.color, 1.0)
            bsdf.inputs["Emission Strength"].default_value = m.emission
        if m.texture is not None and self._textures.apply(nt, bsdf, m, scale):
            return mat
        if m.pattern in METRIC_PATTERNS:
            metric_pattern(nt, bsdf, m, scale)
            return mat
        if m.pattern == "plain":
            bsdf.inputs["Base Color"].default_value = (*m.color, 1.0)
            return mat
        kind, socket = _TEXTURES[m.pattern]
        tex = nt.nodes.new(kind)
        tex.inputs["Scale"].default_value = m.pattern_scale
        mix = nt.nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.inputs[6].default_value = (*m.color, 1.0)
        mix.inputs[7].default_value = (*m.color2, 1.0)
        nt.links.new(tex.outputs[socket], mix.inputs[0])
        nt.links.new(mix.outputs[2], bsdf.inputs["Base Color"])
        if m.bump > 0:
            bump = nt.nodes.new("ShaderNodeBump")
            bump.inputs["Strength"].default_value = m.bump
            nt.links.new(tex.outputs[socket], bump.inputs["Height"])
            nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
        return mat

    def _add_part(self, part: Part, parent: np.ndarray, pass_index: int, velocity: Vec3,
                  cache: dict[Any, Any]) -> None:
        bpy = self._bpy
        obj = bpy.data.objects.new("synth-part", self._mesh(part.primitive))
        self._sample_objects.append(obj)
        m = parent @ trs(part.location, part.rotation, part.scale)
        key: Any = part.material
        scale: Vec3 = (1.0, 1.0, 1.0)
        if part.material.texture is not None or part.material.pattern in METRIC_PATTERNS:
            # Laid out in metres: one material per part size (the part's scale is in its matrix).
            sx, sy, sz = (round(float(np.linalg.norm(m[:3, i])), 3) for i in range(3))
            scale = (sx, sy, sz)
            key = (part.material, scale)
        if key not in cache:
            cache[key] = self._material(part.material, scale)
        # The mesh is shared by all samples: the material is linked to the object instead.
        obj.material_slots[0].link = "OBJECT"
        obj.material_slots[0].material = cache[key]
        obj.pass_index = pass_index
        obj.matrix_world = _to_matrix(bpy, m)
        self._scene.collection.objects.link(obj)
        if any(velocity):
            self._keyframe_motion(obj, m, velocity)

    def _keyframe_motion(self, obj: Any, m: np.ndarray, velocity: Vec3) -> None:
        """Linear motion around frame 1: the shutter integrates it into motion blur."""
        base = m[:3, 3].copy()
        for frame, sign in ((0, -1.0), (2, 1.0)):
            obj.location = tuple(base + sign * np.asarray(velocity))
            obj.keyframe_insert("location", frame=frame)
        if obj.animation_data and obj.animation_data.action:
            self._sample_actions.append(obj.animation_data.action)
        self._scene.frame_set(1)

    def _add_light(self, light: Light) -> None:
        bpy = self._bpy
        data = bpy.data.lights.new("synth-light", light.kind.upper())
        self._sample_lights.append(data)
        data.energy = light.energy
        data.color = light.color
        if light.kind == "sun":
            data.angle = light.size
        elif light.kind == "area":
            data.size = light.size
        else:
            data.shadow_soft_size = light.size
        obj = bpy.data.objects.new("synth-light", data)
        self._sample_objects.append(obj)
        obj.matrix_world = _to_matrix(bpy, trs(light.location, light.rotation, (1.0, 1.0, 1.0)))
        self._scene.collection.objects.link(obj)

    def _build(self, scene: Scene) -> None:
        cam = self._camera
        cam.data.lens = scene.camera.focal_mm
        cam.data.sensor_width = scene.camera.sensor_mm
        cam.matrix_world = _to_matrix(self._bpy, post.blender_matrix_world(scene.camera))
        dof = cam.data.dof
        dof.use_dof = scene.camera.fstop > 0
        if dof.use_dof:
            dof.aperture_fstop = scene.camera.fstop
            dof.focus_distance = float(np.linalg.norm(np.subtract(scene.camera.look_at, scene.camera.location)))
        self._set_world(scene)
        cache: dict[Any, Any] = {}
        moving = False
        if self._assets is not None:
            self._assets.begin_sample()
        for obj in scene.objects:
            parent = trs(obj.location, obj.rotation, obj.scale)
            moving = moving or any(obj.velocity)
            if obj.asset is not None:
                self._add_asset(obj, parent)
            if obj.simulation is not None:
                from synth_render import blender_sim

                blender_sim.add(self, obj)
            for part in obj.parts:
                self._add_part(part, parent, obj.id, obj.velocity, cache)
        for part in scene.background:
            self._add_part(part, np.eye(4), 0, (0.0, 0.0, 0.0), cache)
        for light in scene.lights:
            self._add_light(light)
        self._scene.render.use_motion_blur = moving

    def _add_asset(self, obj: Any, parent: np.ndarray) -> None:
        """Linked duplicates of a library asset (imported once per worker); skipped if it is rejected."""
        if self._assets is None:
            from synth_render.assets.runtime import worker_cache
            from synth_render.blender_assets import AssetImporter

            self._assets = AssetImporter(self._bpy, worker_cache(), quiet=self._quiet)
            self._assets.begin_sample()
        made = self._assets.instance(obj.asset, parent, obj.id, self._scene.collection)
        self._sample_objects.extend(made or [])

    @property
    def assets_rejected(self) -> dict[str, str]:
        """Library assets this worker refused to render ({library}/{path} -> why)."""
        return dict(self._assets.rejected) if self._assets is not None else {}

    def _clear(self) -> None:
        d = self._bpy.data
        for obj in self._sample_objects:
            d.objects.remove(obj, do_unlink=True)
        for light in self._sample_lights:
            d.lights.remove(light, do_unlink=True)
        for mat in self._sample_materials:
            d.materials.remove(mat, do_unlink=True)
        for action in self._sample_actions:
            d.actions.remove(action, do_unlink=True)
        self._sample_objects.clear()
        self._sample_lights.clear()
        self._sample_materials.clear()
        self._sample_actions.clear()
        if getattr(self, "_sim_state", None) is not None:
            from synth_render import blender_sim

            blender_sim.clear(self)

    # ------------------------------------------------------------------ extra ground truth

    def _set_extra_passes(self, ex: Extras) -> None:
        """Switch the view layer's albedo and roughness/metallic AOVs on or off."""
        vl = self._scene.view_layers[0]
        want = {"albedo"} if ex.albedo else set()
        if ex.aovs:
            want.update(_AOVS)
        have = {a.name: a for a in vl.aovs}
        for name, (_, kind) in _AOV_SOURCES.items():
            if name in want and name not in have:
                aov = vl.aovs.add()
                aov.name, aov.type = name, kind
            elif name not in want and name in have:
                vl.aovs.remove(have[name])

    def _attach_aovs(self) -> None:
        """Feed every sample material's Principled base colour/roughness/metallic (value or texture) to the AOVs."""
        seen: set[int] = set()
        for obj in self._sample_objects:
            for slot in getattr(obj, "material_slots", ()):
                mat = slot.material
                if mat is None or id(mat) in seen or mat.node_tree is None:
                    continue
                seen.add(id(mat))
                nt = mat.node_tree
                bsdf = next((n for n in nt.nodes if n.type == "BSDF_PRINCIPLED"), None)
                for name, (socket, kind) in _AOV_SOURCES.items():
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

    def _aux_renders(self, ex: Extras, *, moving: bool) -> dict[str, Any]:
        """1-sample renders for flow (motion blur off) and amodal masks (one per object group)."""
        if not ex.amodal_groups and not (ex.flow and moving):
            return {}
        sc, vl = self._scene, self._scene.view_layers[0]
        saved = (sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur, sc.cycles.max_bounces,
                 vl.use_pass_normal, vl.use_pass_z)
        sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur = 1, False, False
        sc.cycles.max_bounces = 0
        vl.use_pass_normal = vl.use_pass_z = False
        self._set_extra_passes(Extras())
        # Cheap: no world (no fog, no HDRI), one emission-free shader for everything (no texture
        # evaluation, no light sampling), and Cycles keeps the scene between the aux renders.
        world, sc.world = sc.world, None
        vl.material_override = self._aux_material()
        sc.render.use_persistent_data = True
        out: dict[str, Any] = {}
        parts = [o for o in self._sample_objects if o.type == "MESH"]
        try:
            if ex.flow and moving:
                vl.use_pass_vector = True
                self._render_quiet()
                v = self._read_layers()["Vector"]
                # Cycles' (Z, W) points from the current position to the previous frame's, y up
                # (measured); flow to the next frame in image axes (v down) is (-Z, W) for linear motion.
                out["flow"] = np.stack([-v["Z"], v["W"]], axis=-1).astype(np.float32)
                vl.use_pass_vector = False
            amodal = []
            for group in ex.amodal_groups:
                members = set(group)
                for o in parts:
                    o.visible_camera = o.pass_index in members
                self._render_quiet()
                amodal.append(next(iter(self._read_layers()["Object Index"].values())))
            out["amodal"] = amodal
        finally:
            for o in parts:
                o.visible_camera = True
            vl.use_pass_vector = False
            sc.world, vl.material_override = world, None
            sc.render.use_persistent_data = False
            (sc.cycles.samples, sc.cycles.use_denoising, sc.render.use_motion_blur, sc.cycles.max_bounces,
             vl.use_pass_normal, vl.use_pass_z) = saved
        return out

    def _aux_material(self) -> Any:
        """A black emission material (created once): shading the aux renders costs nothing."""
        if getattr(self, "_aux_mat", None) is None:
            mat, out = bare_material(self._bpy, "synth-aux")
            nt = mat.node_tree
            em = nt.nodes.new("ShaderNodeEmission")
            em.inputs["Strength"].default_value = 0.0
            nt.links.new(em.outputs["Emission"], out.inputs["Surface"])
            self._aux_mat = mat
        return self._aux_mat

    def _render_quiet(self) -> None:
        with _quiet_stdout(self._quiet):
            self._bpy.ops.render.render(write_still=True)

    def _save_scene(self, kind: str) -> bytes:
        """The sample's scene (objects, materials, lights, camera) as .glb or .blend bytes."""
        bpy = self._bpy
        path = os.path.join(self._tmp.name, f"scene.{kind}")
        with _quiet_stdout(self._quiet):
            if kind == "glb":
                bpy.ops.export_scene.gltf(filepath=path, export_format="GLB", use_selection=False,
                                          export_cameras=True, export_lights=True, export_apply=True)
            else:
                bpy.ops.wm.save_as_mainfile(filepath=path, copy=True, compress=True)
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
        return data

    # ------------------------------------------------------------------ reading

    def _read_layers(self) -> dict[str, dict[str, np.ndarray]]:
        """The render's EXR as {pass name: {channel: (H, W) float32}}; the file is removed."""
        import OpenEXR

        parts: dict[str, dict[str, np.ndarray]] = {}
        with OpenEXR.File(self._exr, separate_channels=True) as f:
            for p in f.parts:
                parts[p.name().split(".", 1)[-1]] = {k.rsplit(".", 1)[-1]: np.array(v.pixels)
                                                     for k, v in p.channels.items()}
        os.unlink(self._exr)
        return parts

    def _read_exr(self, *, normals: bool) -> dict[str, np.ndarray]:
        parts = self._read_layers()
        comb = parts["Combined"]
        out = {
            "rgb": np.stack([comb["R"], comb["G"], comb["B"]], axis=-1),
            "depth": parts["Depth"]["V"] if "V" in parts["Depth"] else next(iter(parts["Depth"].values())),
            "index": next(iter(parts["Object Index"].values())),
        }
        if normals:
            n = parts["Normal"]
            out["normals"] = np.stack([n["X"], n["Y"], n["Z"]], axis=-1)
        if "albedo" in parts:
            d = parts["albedo"]
            out["albedo"] = np.stack([d["R"], d["G"], d["B"]], axis=-1)
        for name in _AOVS:
            if name in parts:
                out[name] = next(iter(parts[name].values()))
        if "Vector" in parts:  # sequences (blender_frames): the frame's own vector pass
            from synth_render.blender_frames import flow_of

            out["flow"] = flow_of(parts)
        return out


def _to_matrix(bpy: Any, m: np.ndarray) -> Any:
    import mathutils

    return mathutils.Matrix(m.tolist())
