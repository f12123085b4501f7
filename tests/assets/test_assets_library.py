"""Asset libraries without Blender: layout, catalog, path safety, fetch from disk and S3, cache bound."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from asset_helpers import upload_dir

from synth_render.assets.catalog import UnsafePath, parse_catalog, safe_relpath
from synth_render.assets.fetch import (
    AssetCache,
    Unreachable,
    fetch_asset,
    fetch_file,
    list_uri,
    resolve_uri_dir,
)
from synth_render.assets.library import NoUsableAsset, load_library


@pytest.mark.parametrize("path", ["../x.glb", "a/../../x.glb", "/etc/passwd", "C:/x.glb", "a\\..\\x.glb", "", "."])
def test_paths_that_leave_the_library_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath):
        safe_relpath(path)


def test_library_lists_classes_sizes_and_licences_from_layout_and_catalog(sample_lib: Path, tmp_path: Path) -> None:
    lib = load_library("props", sample_lib.as_uri(), AssetCache(tmp_path / "cache"))
    assert sorted(lib.classes) == ["bottle", "box", "chair", "lamp", "mug"]
    assert all(len(v) == 2 for v in lib.classes.values())
    mug = lib.classes["mug"][0]
    assert (mug.size_m, mug.license) == (0.12, "CC0-1.0")
    assert {e.format for e in lib.entries} == {"glb", "obj", "ply", "stl"}
    # companions (MTL, PNG) are not assets
    assert not any(e.path.endswith((".mtl", ".png")) for e in lib.entries)


def test_catalog_entries_that_escape_or_lie_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"assets\[0\]\.path"):
        parse_catalog("assets: [{path: ../../etc/x.glb, class: mug}]")
    with pytest.raises(ValueError, match="sizeMeters"):
        parse_catalog("assets: [{path: mug/a.glb, sizeMeters: huge}]")
    root = tmp_path / "lib"
    (root / "mug").mkdir(parents=True)
    (root / "mug" / "a.glb").write_bytes(b"glTF....")
    (root / "mug" / "b.glb").write_bytes(b"glTF....")
    (root / "catalog.yaml").write_text("assets: [{path: mug/a.glb, sizeMeters: 5000}]\n")
    lib = load_library("x", root.as_uri(), AssetCache(tmp_path / "c"))
    assert [e.path for e in lib.entries] == ["mug/b.glb"]
    assert lib.rejected[0].path == "mug/a.glb" and "absurd" in lib.rejected[0].why


def test_symlinks_inside_a_library_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "outside.glb"
    secret.write_bytes(b"glTF secret")
    root = tmp_path / "lib"
    (root / "mug").mkdir(parents=True)
    (root / "mug" / "ok.glb").write_bytes(b"glTF....")
    (root / "mug" / "link.glb").symlink_to(secret)
    (root / "cup").symlink_to(tmp_path, target_is_directory=True)
    cache = AssetCache(tmp_path / "cache")
    assert sorted(list_uri(root.as_uri(), cache)) == ["mug/ok.glb"]
    with pytest.raises(UnsafePath, match="symlink"):
        fetch_file(root.as_uri(), "mug/link.glb", cache)
    with pytest.raises(UnsafePath, match="symlink"):
        fetch_file(root.as_uri(), "cup/outside.glb", cache)


def test_obj_companions_that_escape_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    (root / "mug").mkdir(parents=True)
    (root / "mug" / "a.obj").write_text("mtllib ../../../etc/evil.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(UnsafePath):
        fetch_asset(root.as_uri(), "mug/a.obj", AssetCache(tmp_path / "cache"))


@pytest.mark.parametrize("uri", ["file:///no/such/library", "builtin:nothing"])
def test_unreachable_uris_name_themselves(uri: str, tmp_path: Path) -> None:
    with pytest.raises(Unreachable, match=uri.split("//")[-1].split(":")[-1]):
        load_library("x", uri, AssetCache(tmp_path))


def test_a_library_without_usable_assets_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "readme.txt").write_text("nothing here")
    (root / "loose.glb").write_bytes(b"glTF")  # no class folder and no catalog class
    with pytest.raises(NoUsableAsset, match="no usable asset"):
        load_library("x", root.as_uri(), AssetCache(tmp_path / "c"))


def test_s3_library_is_read_through_the_endpoint_and_stays_in_the_cache(
    sample_lib: Path, s3_client: Any, s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    upload_dir(s3_client, bucket, "assets/props", sample_lib)
    s3_client.put_object(Bucket=bucket, Key="assets/props/mug/../../../escape.glb", Body=b"glTF....")
    uri = f"s3://{bucket}/assets/props"
    cache = AssetCache(tmp_path / "cache", endpoint_url=s3_endpoint)
    lib = load_library("props", uri, cache)
    assert len(lib.entries) == 10
    obj = next(e for e in lib.entries if e.format == "obj")
    local = fetch_asset(uri, obj.path, cache)
    assert local.is_relative_to(cache.root)
    stem = local.stem
    assert (local.parent / f"{stem}.mtl").is_file() and (local.parent / f"{stem}.png").is_file()
    folder = resolve_uri_dir(uri, cache)
    assert folder.is_relative_to(cache.root)
    landed = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(cache.root) for p in landed)
    assert not (tmp_path / "escape.glb").exists()


def test_s3_missing_bucket_is_unreachable(s3_endpoint: str, aws_env: None, tmp_path: Path) -> None:
    with pytest.raises(Unreachable, match="s3://no-such-bucket-here/x"):
        load_library("x", "s3://no-such-bucket-here/x", AssetCache(tmp_path, endpoint_url=s3_endpoint))


def test_cache_stays_under_its_size_cap(s3_client: Any, s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    for i in range(12):
        s3_client.put_object(Bucket=bucket, Key=f"lib/box/a{i:02d}.stl", Body=os.urandom(10_000))
    uri = f"s3://{bucket}/lib"
    cache = AssetCache(tmp_path / "cache", max_bytes=35_000, endpoint_url=s3_endpoint)
    for i in range(12):
        fetch_asset(uri, f"box/a{i:02d}.stl", cache)
        on_disk = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file())
        assert on_disk <= 35_000
    assert cache.evictions >= 9
    # the most recent files are kept; an evicted one comes back on demand
    assert fetch_asset(uri, "box/a11.stl", cache).is_file()
    assert fetch_asset(uri, "box/a00.stl", cache).stat().st_size == 10_000


def test_gltf_buffers_come_along_from_s3(s3_client: Any, s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    import trimesh

    files = trimesh.Scene(trimesh.creation.box()).export(file_type="gltf")
    for name, data in files.items():
        key = "lib/box/a.gltf" if name.endswith(".gltf") else f"lib/box/{name}"
        s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    cache = AssetCache(tmp_path / "cache", endpoint_url=s3_endpoint)
    local = fetch_asset(f"s3://{bucket}/lib", "box/a.gltf", cache)
    assert {p.name for p in local.parent.iterdir()} == {"a.gltf", *(n for n in files if n.endswith(".bin"))}
