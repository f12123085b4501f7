"""Environment and texture sources: listing, map names, paths that leave the source (no Blender)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth_render import content
from synth_render.texture_maker import write_texture_sets


@pytest.mark.parametrize(("name", "role"), [
    ("Wood049_1K-PNG_Color.png", "color"), ("bark_diff_1k.jpg", "color"), ("rock_albedo.png", "color"),
    ("metal_BaseColor.jpg", "color"), ("x_basecolor.png", "color"), ("Wood049_1K-PNG_NormalGL.png", "normal"),
    ("Wood049_1K-PNG_NormalDX.png", "normal_dx"), ("bark_nor_gl_1k.png", "normal"), ("bark_nor_dx_1k.exr", "normal_dx"),
    ("Wood049_Roughness.png", "roughness"), ("bark_rough_1k.png", "roughness"), ("Metal_Metalness.png", "metallic"),
    ("plate_metallic.jpg", "metallic"), ("Wood049_Displacement.png", None), ("bark_ao_1k.png", None),
    ("readme.txt", None), ("preview.blend", None),
])
def test_map_roles_follow_ambientcg_and_poly_haven_names(name: str, role: str | None) -> None:
    assert content.map_role(name) == role


def test_a_folder_per_material_is_a_texture_set(tmp_path: Path) -> None:
    write_texture_sets(tmp_path, size=16)
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-colour").mkdir()
    (tmp_path / "no-colour" / "x_Roughness.png").write_bytes(b"")
    uri = tmp_path.as_uri()
    assert content.texture_ids(uri) == ("concrete", "tiles", "wood")
    maps = content.texture_maps(uri, "concrete")
    assert set(maps) == {"color", "roughness", "normal_dx"} and maps["color"].name == "concrete_diff_1k.png"
    assert set(content.texture_maps(uri, "tiles")) == {"color", "roughness", "normal", "metallic"}


def test_builtin_studiolights_are_found_from_the_bpy_install() -> None:
    pytest.importorskip("bpy")
    ids = content.environment_ids(content.BUILTIN_ENVIRONMENTS)
    assert {"city.exr", "forest.exr", "studio.exr"} <= set(ids) and list(ids) == sorted(ids)
    assert content.environment_path(content.BUILTIN_ENVIRONMENTS, "city.exr").is_file()


@pytest.mark.parametrize("bad", ["../outside.exr", "/etc/passwd", "sub/../../x.exr"])
def test_ids_that_leave_the_source_are_refused(tmp_path: Path, bad: str) -> None:
    (tmp_path / "a.exr").write_bytes(b"")
    with pytest.raises(content.ContentError, match="leaves the source"):
        content.environment_path(tmp_path.as_uri(), bad)


def test_a_missing_source_is_named(tmp_path: Path) -> None:
    uri = (tmp_path / "nope").as_uri()
    with pytest.raises(content.ContentError, match="nope"):
        content.environment_ids(uri)
