"""The Blender side of asset libraries: import once per worker, normalise, instance, bound memory.

Part of :mod:`synth_render.blender` (the modules that touch ``bpy``). An asset is imported
the first time a scene needs it (glTF/GLB, OBJ with MTL and textures, PLY, STL, or the objects of
a ``.blend``), its mesh objects are baked into template meshes (world transform applied),
normalised to a unit largest dimension, centred in x and y with the base at z = 0, and kept
with their own materials (images packed, so the download cache may evict the files). Each
sample links new objects to the template meshes (linked duplicates, no copy). Templates are
held in an LRU bounded by an estimate of their memory (vertices, faces, image pixels); an
evicted asset is removed with all its data-blocks and imported again when needed.

An asset that fails (import error, no faces, absurd size, file refused by the path checks) is
rejected once, remembered, and skipped; the sample renders without it. A download the store did
not answer (:class:`~synth_render.assets.fetch.Unavailable`) is no fault of the asset: it fails
the shard, which the Job retries.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synth_render.assets.catalog import UnsafePath, header_problem
from synth_render.assets.fetch import AssetCache, Unavailable, Unreachable, fetch_asset
from synth_render.scene import AssetRef

DEFAULT_MEMORY_BYTES = int(os.environ.get("SYNTH_ASSET_MEMORY_MB", "1024")) * 1024 * 1024
MAX_VERTICES = 5_000_000
"""An asset with more vertices than this is refused (it would not fit a worker's memory budget)."""
MIN_EXTENT_M, MAX_EXTENT_M = 1e-5, 1e5
"""Raw extents outside this range (in the file's units) are absurd: broken files or wrong units."""
_KINDS = ("objects", "meshes", "materials", "images", "node_groups", "textures", "lights", "cameras",
          "collections", "actions")


@dataclass
class Template:
    """An imported asset: meshes in normalised space and every data-block that came with it."""

    key: str
    meshes: list[Any]
    owned: dict[str, list[Any]]
    bytes: int
    triangles: int
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.0,) * 3, (0.0,) * 3)
    """Axis-aligned bounds in normalised space (largest dimension 1, base at z = 0)."""
    recolour: bool = False
    """The asset brought no material (STL, PLY without colours): each sample may tint it."""


@dataclass
class AssetStats:
    imports: Counter[str] = field(default_factory=Counter)
    evictions: int = 0
    instances: int = 0
    import_seconds: float = 0.0


class AssetImporter:
    """Per-worker import cache of library assets (one per :class:`BlenderRenderer`)."""

    def __init__(self, bpy: Any, cache: AssetCache, *, max_bytes: int = DEFAULT_MEMORY_BYTES,
                 quiet: bool = True) -> None:
        self._bpy = bpy
        self.cache = cache
        self.max_bytes = max_bytes
        self._quiet = quiet
        self._loaded: OrderedDict[str, Template] = OrderedDict()
        self.rejected: dict[str, str] = {}
        """key ({library}/{id}) -> why it was refused."""
        self.stats = AssetStats()
        self._in_use: set[str] = set()
        self._tints: list[Any] = []
        """Materials that tint material-less assets, reused sample after sample (bounded by instances per sample)."""
        self._tints_used = 0

    @property
    def loaded_bytes(self) -> int:
        return sum(t.bytes for t in self._loaded.values())

    def begin_sample(self) -> None:
        self._in_use.clear()
        self._tints_used = 0

    def _tint(self, color: tuple[float, float, float]) -> Any:
        if self._tints_used == len(self._tints):
            mat = _fallback_material(self._bpy, None)
            mat.use_fake_user = True
            self._tints.append(mat)
        mat = self._tints[self._tints_used]
        self._tints_used += 1
        bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        bsdf.inputs["Base Color"].default_value = (*color, 1.0)
        return mat

    def instance(self, ref: AssetRef, matrix: np.ndarray, pass_index: int, collection: Any) -> list[Any] | None:
        """New objects showing the asset at ``matrix`` (normalised size applied); None if rejected."""
        tpl = self._template(ref)
        if tpl is None:
            return None
        bpy = self._bpy
        import mathutils

        m = matrix @ np.diag([ref.size, ref.size, ref.size, 1.0])
        objs = []
        tint = self._tint(ref.color) if tpl.recolour and ref.color is not None else None
        for mesh in tpl.meshes:
            obj = bpy.data.objects.new(f"asset-{ref.id}", mesh)
            obj.pass_index = pass_index
            if tint is not None:  # the shared mesh keeps its grey: the tint is linked to this object only
                for slot in obj.material_slots:
                    slot.link = "OBJECT"
                    slot.material = tint
            obj.matrix_world = mathutils.Matrix(m.tolist())
            collection.objects.link(obj)
            objs.append(obj)
        self.stats.instances += 1
        return objs

    # ------------------------------------------------------------------ templates

    def _template(self, ref: AssetRef) -> Template | None:
        key = f"{ref.library}/{ref.id}"
        if key in self.rejected:
            return None
        if key in self._loaded:
            self._loaded.move_to_end(key)
            self._in_use.add(key)
            return self._loaded[key]
        import time

        t0 = time.perf_counter()
        try:
            tpl = self._import(ref, key)
        except Unavailable:  # the store did not answer: the shard fails and is retried, the asset is not refused
            raise
        except Exception as exc:  # a broken asset never stops the worker
            self.rejected[key] = _one_line(exc)
            return None
        finally:
            self.stats.import_seconds += time.perf_counter() - t0
        self.stats.imports[key] += 1
        self._loaded[key] = tpl
        self._in_use.add(key)
        self._evict()
        return tpl

    def _evict(self) -> None:
        while self.loaded_bytes > self.max_bytes:
            victim = next((k for k in self._loaded if k not in self._in_use), None)
            if victim is None:
                return
            self._remove(self._loaded.pop(victim))
            self.stats.evictions += 1

    def _remove(self, tpl: Template) -> None:
        d = self._bpy.data
        for kind in _KINDS:
            coll = getattr(d, kind)
            for block in tpl.owned.get(kind, []):
                with contextlib.suppress(ReferenceError, RuntimeError):  # already gone with its owner
                    coll.remove(block, do_unlink=True)

    def close(self) -> None:
        for tpl in self._loaded.values():
            self._remove(tpl)
        self._loaded.clear()
        for mat in self._tints:
            self._bpy.data.materials.remove(mat, do_unlink=True)
        self._tints.clear()

    def _import(self, ref: AssetRef, key: str) -> Template:
        try:
            path = fetch_asset(ref.uri, ref.id, self.cache)
        except (UnsafePath, Unreachable, FileNotFoundError) as exc:
            raise ValueError(str(exc)) from exc
        fmt = path.suffix.lower().lstrip(".")
        with open(path, "rb") as f:
            head = f.read(512)
        problem = header_problem(fmt, head, path.stat().st_size)
        if problem:
            raise ValueError(problem)
        d = self._bpy.data
        before = {kind: set(getattr(d, kind)) for kind in _KINDS}
        try:
            objects = self._run_importer(fmt, path)
        finally:
            owned = {kind: [b for b in getattr(d, kind) if b not in before[kind]] for kind in _KINDS}
        try:
            return self._normalise(key, objects, owned)
        except Exception:
            tpl = Template(key, [], owned, 0, 0)
            self._remove(tpl)
            raise

    def _run_importer(self, fmt: str, path: Path) -> list[Any]:
        bpy = self._bpy
        from synth_render.blender.guard import quiet_stdout as _quiet_stdout

        before = set(bpy.data.objects)
        p = str(path)
        with _quiet_stdout(self._quiet):
            if fmt in ("glb", "gltf"):
                import logging

                bpy.ops.import_scene.gltf(filepath=p, loglevel=logging.ERROR)
            elif fmt == "obj":
                bpy.ops.wm.obj_import(filepath=p)
            elif fmt == "ply":
                bpy.ops.wm.ply_import(filepath=p)
            elif fmt == "stl":
                bpy.ops.wm.stl_import(filepath=p)
            elif fmt == "blend":
                with bpy.data.libraries.load(p, link=False) as (src, dst):
                    dst.objects = list(src.objects)
                for lib in list(bpy.data.libraries):
                    if Path(bpy.path.abspath(lib.filepath)) == path:
                        bpy.data.libraries.remove(lib)
            else:
                raise ValueError(f"unsupported format {fmt!r}")
        return [o for o in bpy.data.objects if o not in before]

    def _normalise(self, key: str, objects: list[Any], owned: dict[str, list[Any]]) -> Template:
        bpy = self._bpy
        import mathutils

        meshes = []
        for obj in objects:
            if obj.type != "MESH" or obj.data is None or len(obj.data.polygons) == 0:
                continue
            mesh = obj.data if obj.data.users == 1 else obj.data.copy()
            if mesh is not obj.data:
                owned["meshes"].append(mesh)
            mesh.transform(obj.matrix_world)
            meshes.append(mesh)
        for obj in objects:  # templates are never linked to the scene: instances are
            if obj.name in bpy.data.objects:
                bpy.data.objects.remove(obj, do_unlink=True)
        owned["objects"] = []
        if not meshes:
            raise ValueError("no mesh with faces")
        verts = sum(len(m.vertices) for m in meshes)
        if verts > MAX_VERTICES:
            raise ValueError(f"{verts} vertices (more than {MAX_VERTICES})")
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for m in meshes:
            co = np.empty(len(m.vertices) * 3, dtype=np.float32)
            m.vertices.foreach_get("co", co)
            co = co.reshape(-1, 3)
            if not np.isfinite(co).all():
                raise ValueError("vertex coordinates are not finite")
            lo, hi = np.minimum(lo, co.min(0)), np.maximum(hi, co.max(0))
        ext = float((hi - lo).max())
        if not (MIN_EXTENT_M <= ext <= MAX_EXTENT_M) or not math.isfinite(ext):
            raise ValueError(f"absurd size: largest dimension {ext:g} (allowed {MIN_EXTENT_M:g}..{MAX_EXTENT_M:g})")
        centre = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2])
        norm = mathutils.Matrix.Scale(1.0 / ext, 4) @ mathutils.Matrix.Translation([-c for c in centre])
        tris = 0
        recolour = False
        from synth_render.blender.normals import freeze

        for m in meshes:
            m.transform(norm)
            m.update()
            freeze(m)  # the same normal bits in every process (a re-render in a fresh process is exact)
            tris += sum(len(p.vertices) - 2 for p in m.polygons)
            if not m.materials or all(mat is None for mat in m.materials):
                mat = _fallback_material(bpy, m)
                owned["materials"].append(mat)
                recolour = recolour or not len(m.color_attributes)
            m.use_fake_user = True
        for mat in owned.get("materials", []):  # as blender.materials: mesh lights are not exact between processes
            mat.cycles.emission_sampling = "NONE"
        pixels = 0
        for img in owned.get("images", []):
            try:
                if img.packed_file is None and img.source == "FILE":
                    img.pack()
                pixels += int(img.size[0]) * int(img.size[1])
            except RuntimeError:
                continue  # a texture that cannot be read renders pink; the mesh is still fine
        est = verts * 120 + tris * 40 + pixels * 4
        nlo = tuple(float(v) for v in (lo - np.asarray(centre)) / ext)
        nhi = tuple(float(v) for v in (hi - np.asarray(centre)) / ext)
        return Template(key=key, meshes=meshes, owned=owned, bytes=est, triangles=tris,
                        bounds=(nlo, nhi), recolour=recolour)  # type: ignore[arg-type]

    def template(self, ref: AssetRef) -> Template | None:
        """The imported template of an asset (importing it if needed); None when rejected."""
        return self._template(ref)


def _fallback_material(bpy: Any, mesh: Any) -> Any:
    """A material for meshes that bring none: vertex colours when present (PLY), else light grey."""
    mat = bpy.data.materials.new("asset-default")
    if mat.node_tree is None:
        mat.use_nodes = True
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.5
    if mesh is None:
        return mat
    if len(mesh.color_attributes):
        attr = nt.nodes.new("ShaderNodeVertexColor")
        attr.layer_name = mesh.color_attributes[0].name
        nt.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    else:
        bsdf.inputs["Base Color"].default_value = (0.7, 0.7, 0.7, 1.0)
    mesh.materials.clear()
    mesh.materials.append(mat)
    return mat


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else ""
    return f"{type(exc).__name__}: {msg}"[:300] if not isinstance(exc, ValueError) else msg[:300]
