"""The render driver: the one class that turns a scene description into Blender data.

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
from typing import Any

import numpy as np

from synth_render import post
from synth_render.blender import cycles, normals, passes, world
from synth_render.blender import frames as blender_frames
from synth_render.blender import simulation as blender_sim
from synth_render.blender.guard import quiet_stdout, require_bpy
from synth_render.blender.materials import METRIC_PATTERNS, TextureSets, make_material
from synth_render.blender.meshes import build_shape
from synth_render.blender.views import render_views
from synth_render.rendering import Extras, RenderOutput
from synth_render.scene import SHAPE_BOUNDS, Light, Material, Part, Scene, Shape, Vec3
from synth_render.transforms import trs


class BlenderRenderer:
    """A long-lived Blender scene that renders one :class:`Scene` at a time."""

    def __init__(self, *, device: str = "auto", engine: str = "cycles", workdir: str | None = None,
                 quiet: bool = True) -> None:
        bpy = self._bpy = require_bpy()
        self._quiet = quiet
        with quiet_stdout(quiet):
            bpy.ops.wm.read_factory_settings(use_empty=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="synth-render-", dir=workdir)
        sc = self._scene = bpy.context.scene
        if engine != "cycles":
            raise ValueError(f"engine {engine!r} is not supported by this renderer build (use cycles)")
        sc.render.engine = "CYCLES"
        with quiet_stdout(quiet):  # device probing prints CUDA/HIP loader warnings
            kind, self.device = cycles.choose_device(bpy, device)
        self._gpu_kind = kind
        self._exr = os.path.join(self._tmp.name, "frame.exr")
        cycles.configure(sc, kind=kind, exr_path=self._exr)
        cam_data = bpy.data.cameras.new("synth-camera")
        cam_data.sensor_fit = "HORIZONTAL"
        cam_data.clip_start = 0.05
        cam_data.clip_end = 1000.0
        self._camera = bpy.data.objects.new("synth-camera", cam_data)
        sc.collection.objects.link(self._camera)
        sc.camera = self._camera
        self._world = world.make_world(bpy)
        sc.world = self._world.world
        self._env = world.EnvironmentWorld(bpy, self._world.world, self._world.background, self._world.output)
        self._textures = TextureSets(bpy)
        # Every shape's unit mesh, built once and shared by all samples; faces in one order and
        # normals computed by us (Blender's differ between processes: blender.normals).
        self._meshes: dict[str, Any] = {name: build_shape(bpy, name) for name in SHAPE_BOUNDS}
        for mesh in self._meshes.values():
            normals.canonicalize(mesh)
            normals.freeze(mesh)
        self._sample_objects: list[Any] = []
        self._sample_lights: list[Any] = []
        self._sample_materials: list[Any] = []
        self._sample_actions: list[Any] = []
        self._assets: Any = None  # blender.assets.AssetImporter, made for the first library object
        self.engine_version = bpy.app.version_string

    # ------------------------------------------------------------------ public

    def render(self, scene: Scene, *, width: int, height: int, spp: int, denoise: bool, seed: int,
               normals: bool = True, extras: Extras | None = None, views: tuple[Any, ...] = (),
               frames: tuple[Any, ...] = (), frame_motion_blur: bool = False) -> RenderOutput:
        """Render a scene and return its passes; the Blender scene is clean again afterwards.

        ``views``: more cameras (``scene.Camera``) to render the same built scene from (multi-view).
        ``frames``: the camera of every frame of a sequence (``blender.frames``), frame 0 first;
        ``frame_motion_blur``: blur its frames over the shutter.
        """
        ex = extras or Extras()
        sc = self._scene
        cycles.per_render(sc, kind=self._gpu_kind, width=width, height=height, spp=spp, seed=seed, denoise=denoise,
                          normals=normals)
        passes.set_extra_passes(sc, ex)
        aux: dict[str, Any] = {}
        sims: tuple[dict[str, Any], ...] = ()
        # Multi-view: Cycles keeps the synced scene (BVH, shaders, images) from view 0 to the last view
        # (on a GPU it is kept between samples too: cycles.persistent_data).
        sc.render.use_persistent_data = cycles.persistent_data(self._gpu_kind) or bool(views) or len(frames) > 1
        try:
            self._build(scene)
            if len(frames) > 1:
                blender_frames.prepare(self, scene, tuple(frames), flow=ex.flow, motion_blur=frame_motion_blur)
            if ex.aovs or ex.albedo:
                passes.attach_aovs(self._sample_objects)
            t0 = time.perf_counter()
            self._render_quiet()
            seconds = time.perf_counter() - t0
            out = passes.read_exr(self._exr, normals=normals)
            if any(o.simulation is not None for o in scene.objects):
                out["index"] = blender_sim.label(self, scene, out["index"], out["depth"])
                sims = blender_sim.reports(self)
            t1 = time.perf_counter()
            aux = passes.aux_renders(self, ex, moving=bool(self._scene.render.use_motion_blur))
            if ex.save_scene != "none":
                aux["scene_file"] = self._save_scene(ex.save_scene)
            aux_seconds = time.perf_counter() - t1
            if views:
                aux["views"] = render_views(self, tuple(views), normals=normals)
            if len(frames) > 1:
                aux["frames"] = blender_frames.render_frames(self, len(frames), normals=normals, flow=ex.flow,
                                                             motion_blur=frame_motion_blur)
        finally:
            if len(frames) > 1:
                blender_frames.finish(self)
            self._clear()
            passes.set_extra_passes(sc, Extras())
            sc.render.use_persistent_data = cycles.persistent_data(self._gpu_kind)
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

    @property
    def assets_rejected(self) -> dict[str, str]:
        """Library assets this worker refused to render ({library}/{path} -> why)."""
        return dict(self._assets.rejected) if self._assets is not None else {}

    def close(self) -> None:
        self._tmp.cleanup()

    # ------------------------------------------------------------------ building

    def _build(self, scene: Scene) -> None:
        cam = self._camera
        cam.data.lens = scene.camera.focal_mm
        cam.data.sensor_width = scene.camera.sensor_mm
        cam.matrix_world = _to_matrix(post.blender_matrix_world(scene.camera))
        dof = cam.data.dof
        dof.use_dof = scene.camera.fstop > 0
        if dof.use_dof:
            dof.aperture_fstop = scene.camera.fstop
            dof.focus_distance = float(np.linalg.norm(np.subtract(scene.camera.look_at, scene.camera.location)))
        world.apply(self._world, self._env, scene.world)
        self._textures.begin_sample()
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
                blender_sim.add(self, obj)
            for part in obj.parts:
                self._add_part(part, parent, obj.id, obj.velocity, cache)
        for part in scene.background:
            self._add_part(part, np.eye(4), 0, (0.0, 0.0, 0.0), cache)
        for light in scene.lights:
            self._add_light(light)
        self._scene.render.use_motion_blur = moving

    def _mesh(self, primitive: Shape) -> Any:
        return self._meshes[primitive]

    def _material(self, m: Material, scale: Vec3 = (1.0, 1.0, 1.0)) -> Any:
        """A new material of this sample (removed by ``_clear``)."""
        mat = make_material(self._bpy, m, scale, self._textures)
        self._sample_materials.append(mat)
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
        obj.matrix_world = _to_matrix(m)
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
        obj.matrix_world = _to_matrix(trs(light.location, light.rotation, (1.0, 1.0, 1.0)))
        self._scene.collection.objects.link(obj)

    def _add_asset(self, obj: Any, parent: np.ndarray) -> None:
        """Linked duplicates of a library asset (imported once per worker); skipped if it is rejected."""
        if self._assets is None:
            from synth_render.assets.runtime import worker_cache
            from synth_render.blender.assets import AssetImporter

            self._assets = AssetImporter(self._bpy, worker_cache(), quiet=self._quiet)
            self._assets.begin_sample()
        made = self._assets.instance(obj.asset, parent, obj.id, self._scene.collection)
        self._sample_objects.extend(made or [])

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
            blender_sim.clear(self)

    # ------------------------------------------------------------------ rendering and files

    def _render_quiet(self) -> None:
        with quiet_stdout(self._quiet):
            render_operator()(write_still=True)

    def _save_scene(self, kind: str) -> bytes:
        """The sample's scene (objects, materials, lights, camera) as .glb or .blend bytes."""
        bpy = self._bpy
        path = os.path.join(self._tmp.name, f"scene.{kind}")
        with quiet_stdout(self._quiet):
            if kind == "glb":
                bpy.ops.export_scene.gltf(filepath=path, export_format="GLB", use_selection=False,
                                          export_cameras=True, export_lights=True, export_apply=True)
            else:
                bpy.ops.wm.save_as_mainfile(filepath=path, copy=True, compress=True)
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
        return data


def render_operator() -> Any:
    """``bpy.ops.render.render`` without the view-layer updates ``bpy.ops`` wraps around every call.

    Those evaluate the interactive depsgraph before and after the operator (``bpy/ops.py``); the
    render pipeline builds and evaluates its own depsgraph from the original data, so in a
    background process they only cost time: ~4 ms each at 128 px, two per render call, on the
    main thread (issue #25). The samples are the same bytes (``tests/renderer``).
    """
    from _bpy import ops

    return lambda **kw: ops.call("render.render", kw)


def _to_matrix(m: np.ndarray) -> Any:
    import mathutils

    return mathutils.Matrix(m.tolist())
