"""Hostile asset libraries end in a named refusal, never a traceback, a hang or a read out of the
library (issue #24; the whole commands are driven by tests/badinput/corpus.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trimesh

from synth_render.assets.catalog import header_problem, parse_catalog
from synth_render.assets.fetch import AssetCache, Unreachable, list_uri
from synth_render.assets.library import NoUsableAsset, load_library


def _lib(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    (lib / "mug").mkdir(parents=True)
    (lib / "mug" / "a.glb").write_bytes(trimesh.creation.box(extents=(0.2, 0.2, 0.2)).export(file_type="glb"))
    return lib


@pytest.mark.parametrize("text", [
    "a: &a [1, 2]\nassets: *a\n",  # aliases: the billion-laughs form
    "assets: []\nassets: [{path: mug/a.glb}]\n",  # a duplicate key
    "assets: " + "[" * 50_000 + "]" * 50_000 + "\n",  # nesting deeper than the recursion limit
])
def test_a_hostile_catalog_is_a_value_error_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match=r"catalog\.yaml: not valid YAML"):
        parse_catalog(text)


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_a_catalog_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path, kind: str) -> None:
    lib = _lib(tmp_path)
    if kind == "fifo":
        os.mkfifo(lib / "catalog.yaml")  # opening it for reading would block forever
    else:
        (lib / "catalog.yaml").symlink_to("/dev/zero")
    with pytest.raises(NoUsableAsset, match=r"catalog\.yaml: .*must be a regular file"):
        load_library("props", lib.as_uri(), AssetCache(tmp_path / "cache"))


def test_symlinked_and_special_assets_are_refused_by_name(tmp_path: Path) -> None:
    lib = _lib(tmp_path)
    (lib / "mug" / "b.glb").symlink_to("/etc/passwd")
    os.mkfifo(lib / "mug" / "c.glb")
    got = load_library("props", lib.as_uri(), AssetCache(tmp_path / "cache"))
    assert [e.path for e in got.entries] == ["mug/a.glb"]
    assert {r.path: r.why for r in got.rejected} == {"mug/b.glb": "a symlink (not followed inside a library)",
                                                     "mug/c.glb": "not a regular file"}


def test_an_encoded_dotdot_in_a_file_uri_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Unreachable, match=r"'\.\.' is not allowed"):
        list_uri("file:///tmp/%2e%2e/etc", AssetCache(tmp_path / "cache"))


def test_a_glb_whose_header_length_is_not_its_size_is_corrupt(tmp_path: Path) -> None:
    good = trimesh.creation.box(extents=(0.2, 0.2, 0.2)).export(file_type="glb")
    assert header_problem("glb", good[:512], len(good)) is None
    bad = b"glTF\x02\x00\x00\x00" + b"\x00" * 50
    assert "corrupt GLB" in (header_problem("glb", bad, len(bad)) or "")
    lib = tmp_path / "lib"
    (lib / "mug").mkdir(parents=True)
    (lib / "mug" / "a.glb").write_bytes(bad)
    assert load_library("p", lib.as_uri(), AssetCache(tmp_path / "c")).entries  # listing alone: not opened
    with pytest.raises(NoUsableAsset, match=r"mug/a\.glb: corrupt GLB"):
        load_library("p", lib.as_uri(), AssetCache(tmp_path / "c2"), headers=True)
