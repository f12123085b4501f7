"""Library assets rendered by real Blender (64 px): every format, masks vs 3D bounds, rejections, LRU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import builders
import numpy as np
import pytest
from builders import SMALL

from synth_render import post
from synth_render.assets.sample_library import make_mesh, write_asset
from synth_render.scene import AssetRef, Camera, Light, Scene, SceneObject

pytestmark = pytest.mark.blender

W = H = 64


@pytest.fixture(scope="module")
def renderer(module_renderer: Any) -> Any:
    """This module's own Blender scene: the import counts below start from zero."""
    return module_renderer


def _write_blend(path: Path) -> None:
    """A .blend holding one mesh object (a lamp), written with bpy and removed from the session again."""
    import bpy

    tm = make_mesh("lamp", 3)
    mesh = bpy.data.meshes.new("lamp-mesh")
    mesh.from_pydata(tm.vertices.tolist(), [], tm.faces.tolist())
    obj = bpy.data.objects.new("lamp", mesh)
    bpy.data.libraries.write(str(path), {obj})
    bpy.data.objects.remove(obj)
    bpy.data.meshes.remove(mesh)


@pytest.fixture(scope="module")
def formats_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats")
    for fmt, cls in (("glb", "mug"), ("obj", "chair"), ("ply", "bottle"), ("stl", "box")):
        write_asset(root, cls, f"one-{fmt}", fmt, seed=5)
    (root / "lamp").mkdir()
    _write_blend(root / "lamp" / "one-blend.blend")
    _write_gltf(root / "cup", "one-gltf")
    return root


def _write_gltf(folder: Path, name: str) -> None:
    """A text glTF with separate .bin buffers and a texture (trimesh's exporter), Y-up as glTF wants."""
    import math

    import trimesh
    from PIL import Image

    mesh = make_mesh("mug", 9)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-math.pi / 2, (1, 0, 0)))
    uv = np.c_[np.linspace(0, 1, len(mesh.vertices)), np.linspace(1, 0, len(mesh.vertices))]
    img = Image.fromarray((np.indices((16, 16)).sum(0) % 2 * 200 + 30).astype(np.uint8)).convert("RGB")
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=trimesh.visual.material.PBRMaterial(
        baseColorTexture=img))
    folder.mkdir(parents=True)
    for fname, data in trimesh.Scene(mesh).export(file_type="gltf").items():
        (folder / (f"{name}.gltf" if fname.endswith(".gltf") else fname)).write_bytes(data)


def _scene(refs: list[AssetRef], *, spread: float = 1.2) -> Scene:
    objs = tuple(SceneObject(id=i + 1, cls=r.cls, parts=(), asset=r,
                             location=((i - (len(refs) - 1) / 2) * spread, 0.0, 0.0))
                 for i, r in enumerate(refs))
    cam = Camera(location=(0.0, -3.2, 1.6), look_at=(0.0, 0.0, 0.35), focal_mm=35.0)
    return Scene(category="composition", objects=objs, lights=(Light("sun", (0, 0, 5), (0.4, 0.2, 0), 4.0),),
                 camera=cam)


def _ref(root: Path, rel: str, size: float = 0.8) -> AssetRef:
    return AssetRef(library="lib", id=rel, uri=root.as_uri(), cls=rel.split("/")[0], size=size, license="CC0-1.0")


def _projected_box(corners_world: np.ndarray, cam: Camera) -> np.ndarray:
    k, ext = post.intrinsics(cam, W, H), post.extrinsics(cam)
    pts = (ext @ np.c_[corners_world, np.ones(len(corners_world))].T)[:3]
    uv = (k @ pts)[:2] / pts[2]
    return np.array([uv[0].min(), uv[1].min(), uv[0].max(), uv[1].max()])


@pytest.mark.parametrize("rel", ["mug/one-glb.glb", "cup/one-gltf.gltf", "chair/one-obj.obj", "bottle/one-ply.ply", "box/one-stl.stl",
                                 "lamp/one-blend.blend"])
def test_each_format_renders_and_its_mask_matches_its_projected_bounds(renderer: Any, formats_lib: Path,
                                                                       rel: str) -> None:
    ref = _ref(formats_lib, rel)
    scene = _scene([ref])
    out = renderer.render(scene, width=W, height=H, spp=4, denoise=False, seed=1, normals=False)
    assert renderer.assets_rejected == {}
    seg = post.encode_segmentation(out.index)
    boxes = post.bboxes_from_mask(seg)
    assert 1 in boxes, f"{rel} left no pixels"
    tpl = renderer._assets.template(ref)
    lo, hi = np.asarray(tpl.bounds[0]) * ref.size, np.asarray(tpl.bounds[1]) * ref.size
    assert max(hi - lo) == pytest.approx(ref.size, rel=1e-3) and lo[2] == pytest.approx(0.0, abs=1e-6)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    proj = _projected_box(corners + np.asarray(scene.objects[0].location), scene.camera)
    x0, y0, x1, y1 = boxes[1]
    # the mask lies inside the projection of the 3D box and fills most of it
    assert x0 >= proj[0] - 1.5 and y0 >= proj[1] - 1.5 and x1 <= proj[2] + 1.5 and y1 <= proj[3] + 1.5
    assert (x1 - x0 + 1) >= 0.6 * (proj[2] - proj[0]) and (y1 - y0 + 1) >= 0.6 * (proj[3] - proj[1])
    assert renderer._assets.stats.imports[f"lib/{rel}"] == 1


def test_broken_assets_are_skipped_and_named(renderer: Any, formats_lib: Path, tmp_path: Path) -> None:
    import trimesh

    root = tmp_path / "bad"
    (root / "box").mkdir(parents=True)
    (root / "box" / "corrupt.glb").write_bytes(b"glTF\x02\x00\x00\x00" + b"\x00" * 40)
    (root / "box" / "points.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
                                              b"property float y\nproperty float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n")
    huge = make_mesh("box", 1)
    huge.apply_scale(1e7)
    (root / "box" / "huge.stl").write_bytes(huge.export(file_type="stl"))
    (root / "box" / "good.stl").write_bytes(trimesh.creation.box(extents=(1, 1, 1)).export(file_type="stl"))
    refs = [_ref(root, f"box/{n}") for n in ("corrupt.glb", "points.ply", "huge.stl", "good.stl")]
    scene = _scene(refs, spread=0.9)
    out = renderer.render(scene, width=W, height=H, spp=2, denoise=False, seed=2, normals=False)
    ids = set(np.unique(post.encode_segmentation(out.index)).tolist()) - {0}
    assert ids == {4}
    why = renderer.assets_rejected
    assert set(why) == {"lib/box/corrupt.glb", "lib/box/points.ply", "lib/box/huge.stl"}
    assert "no mesh with faces" in why["lib/box/points.ply"] and "absurd size" in why["lib/box/huge.stl"]
    from synth_render.assets.runtime import annotate

    meta = {"objects": [{"id": 4, "class": "box"}]}
    annotate(meta, scene, renderer)
    assert meta["objects"][0]["asset"] == {"library": "lib", "id": "box/good.stl", "license": "CC0-1.0"}
    assert [r["path"] for r in meta["assetsRejected"]] == ["box/corrupt.glb", "box/huge.stl", "box/points.ply"]
    # rejected once, never imported again
    renderer.render(scene, width=16, height=16, spp=1, denoise=False, seed=3, normals=False)
    assert all(renderer._assets.stats.imports[k] == 0 for k in why)


def test_imported_set_stays_under_its_memory_bound(sample_lib: Path, tmp_path: Path) -> None:
    bpy = pytest.importorskip("bpy")
    from synth_render.assets.fetch import AssetCache
    from synth_render.assets.library import load_library
    from synth_render.blender.assets import AssetImporter

    lib = load_library("props", sample_lib.as_uri(), AssetCache(tmp_path / "c"))
    probe = AssetImporter(bpy, AssetCache(tmp_path / "c1"))
    sizes = [probe.template(_ref(sample_lib, e.path)).bytes for e in lib.entries]
    probe.close()
    cap = 3 * max(sizes)
    imp = AssetImporter(bpy, AssetCache(tmp_path / "c2"), max_bytes=cap)
    meshes_before = len(bpy.data.meshes)
    peak = 0
    for _ in range(2):
        for e in lib.entries:
            imp.begin_sample()
            objs = imp.instance(_ref(sample_lib, e.path), np.eye(4), 1, bpy.context.scene.collection)
            assert objs
            peak = max(peak, imp.loaded_bytes)
            for o in objs:
                bpy.data.objects.remove(o)
        assert imp.loaded_bytes <= cap
    assert peak <= cap + max(sizes)
    assert imp.stats.evictions >= len(lib.entries)
    assert len(bpy.data.meshes) - meshes_before <= 4 * 3  # a few templates alive, never all of them
    imp.close()
    assert len(bpy.data.meshes) == meshes_before


def test_a_sample_with_assets_rerenders_identically(renderer: Any, sample_lib: Path) -> None:
    from synth_render.sample import plan_sample, render_sample

    spec = builders.spec(
        SMALL, samples=4, seed=3, shardSize=4, output={"uri": "file:///tmp/unused"}, image="x",
        render={"resolutions": [{"width": W, "height": H}], "samples": {"min": 2, "max": 2}, "denoise": False,
                "passes": ["rgb", "segmentation"]},
        quality={"minScore": 0.0, "maxRerenders": 0},
        assets={"libraries": [{"name": "props", "uri": sample_lib.as_uri()}]},
        categories=[{"name": "composition", "assets": {"libraries": ["props"], "share": 1.0}}])
    plan = plan_sample(spec, 1)
    first = render_sample(spec, plan, renderer, dataset="d")
    second = render_sample(spec, dataclasses.replace(plan), renderer, dataset="d")
    assert {k: v for k, v in first.files.items() if k != "json"} == \
        {k: v for k, v in second.files.items() if k != "json"}
    meta, again = json.loads(first.files["json"]), json.loads(second.files["json"])
    for m in (meta, again):  # a wall-clock timing, not content
        m["render"].pop("auxSeconds", None)
    assert meta == again
    shown = [o for o in meta["objects"] if "asset" in o]
    assert shown and all(o["asset"]["library"] == "props" and o["asset"]["license"] == "CC0-1.0" for o in shown)
    assert all(o["class"] == o["asset"]["id"].split("/")[0] for o in shown)


def test_material_less_assets_take_the_sample_colour_without_leaking(renderer: Any, formats_lib: Path) -> None:
    import bpy

    means = {}
    counts = []
    for name, color in (("red", (0.8, 0.05, 0.05)), ("blue", (0.05, 0.05, 0.8)), ("red2", (0.8, 0.05, 0.05))):
        ref = dataclasses.replace(_ref(formats_lib, "box/one-stl.stl"), color=color)
        out = renderer.render(_scene([ref]), width=32, height=32, spp=4, denoise=False, seed=1, normals=False)
        mask = post.encode_segmentation(out.index) == 1
        means[name] = out.rgb[mask].mean(axis=0)
        counts.append(len(bpy.data.materials))
    assert means["red"][0] > 2 * means["red"][2] and means["blue"][2] > 2 * means["blue"][0]
    assert counts[1] == counts[2]  # tints are reused, not accumulated


def test_an_s3_library_imports_through_the_endpoint(formats_lib: Path, s3_client: Any, s3_endpoint: str,
                                                    bucket: str, tmp_path: Path) -> None:
    bpy = pytest.importorskip("bpy")
    from asset_helpers import upload_dir

    from synth_render.assets.fetch import AssetCache
    from synth_render.blender.assets import AssetImporter

    upload_dir(s3_client, bucket, "lib", formats_lib)
    cache = AssetCache(tmp_path / "cache", endpoint_url=s3_endpoint)
    imp = AssetImporter(bpy, cache)
    ref = AssetRef(library="s3lib", id="chair/one-obj.obj", uri=f"s3://{bucket}/lib", cls="chair", size=0.9)
    tpl = imp.template(ref)
    assert tpl is not None, imp.rejected
    assert tpl.triangles > 50 and max(np.subtract(tpl.bounds[1], tpl.bounds[0])) == pytest.approx(1.0, rel=1e-3)
    images = [i for kind, blocks in tpl.owned.items() if kind == "images" for i in blocks]
    assert images and all(i.packed_file is not None for i in images)  # the OBJ's texture came along and is packed
    assert all(p.resolve().is_relative_to(cache.root) for p in (tmp_path / "cache").rglob("*") if p.is_file())
    imp.close()
