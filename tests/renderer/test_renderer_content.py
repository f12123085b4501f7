"""Environments and texture sets, rendered with real bpy: HDRI light, backdrops, PBR maps, metadata."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any

import builders
import numpy as np
import pytest
from builders import RENDER
from PIL import Image

from synth_render import content, post
from synth_render.sample import plan_sample, render_sample
from synth_render.scene import (
    Camera,
    Environment,
    Material,
    Part,
    Scene,
    SceneObject,
    Texture,
    World,
)
from synth_render.texture_maker import write_texture_sets

pytestmark = pytest.mark.blender

STUDIO = "builtin:studiolights"


def _scene(world: World, *, floor: Material | None = None) -> Scene:
    ball = SceneObject(id=1, cls="sphere", parts=(Part("sphere", Material(color=(0.7, 0.7, 0.7), roughness=0.6)),),
                       location=(0.0, 0.0, 0.5))
    ground = Part("plane", floor or Material(color=(0.5, 0.5, 0.5), roughness=0.8), scale=(8.0, 8.0, 1.0))
    cam = Camera(location=(2.2, -2.2, 1.6), look_at=(0.0, 0.0, 0.3), focal_mm=30.0)
    return Scene(category="geometry", objects=(ball,), lights=(), camera=cam, world=world, background=(ground,))


def _render(renderer: Any, scene: Scene, size: int = 64) -> Any:
    return renderer.render(scene, width=size, height=size, spp=8, denoise=False, seed=3, normals=False)


def test_brightness_follows_the_environment_strength(renderer: Any) -> None:
    means = []
    for strength in (0.5, 1.0, 2.0):
        env = Environment(uri=STUDIO, id="courtyard.exr", strength=strength, rotation=0.7, visible=False)
        out = _render(renderer, _scene(World(color=(0.0, 0.0, 0.0), environment=env)))
        means.append(float(out.rgb[out.index > 0].mean()))  # the lit ball only
    assert means[0] > 0.01
    assert means[1] / means[0] == pytest.approx(2.0, rel=0.15)
    assert means[2] / means[1] == pytest.approx(2.0, rel=0.15)


def test_the_backdrop_shows_the_hdri_only_when_visible(renderer: Any) -> None:
    def sky(visible: bool, rotation: float = 0.0) -> np.ndarray:
        env = Environment(uri=STUDIO, id="forest.exr", strength=1.0, rotation=rotation, visible=visible)
        scene = _scene(World(color=(0.0, 0.0, 0.0), environment=env))
        out = _render(renderer, Scene(**{**scene.__dict__, "camera": Camera(location=(3.0, 0.0, 0.6),
                                                                              look_at=(0.0, 0.0, 1.2))}))
        return out.rgb[out.depth >= post.BACKGROUND_DEPTH]

    shown, hidden, turned = sky(True), sky(False), sky(True, rotation=2.5)
    assert len(shown) > 200
    # Hidden: the flat (black) colour; only pixels on object edges carry some light.
    assert float(shown.mean()) > 0.05 and float(np.quantile(hidden.max(axis=1), 0.9)) == 0.0
    assert not np.allclose(shown.mean(axis=0), turned.mean(axis=0), atol=0.01)  # rotation turns the backdrop


def test_a_default_spec_is_lit_by_the_builtin_studiolights(renderer: Any) -> None:
    spec = builders.spec(RENDER, categories=[{"name": "characters"}], render={**RENDER["render"], "passes": ["rgb", "segmentation"]})
    sample = render_sample(spec, plan_sample(spec, 1), renderer, dataset="t")
    env = json.loads(sample.files["json"])["environment"]
    assert env["uri"] == STUDIO and env["id"] in content.environment_ids(STUDIO)
    assert env["strength"] > 0 and 0.0 <= env["rotation"] < 6.3
    assert sample.meta["scene"]["world"]["environment"]["id"] == env["id"]
    rgb = np.asarray(Image.open(BytesIO(sample.files["png"])))
    assert 30 < rgb.mean() < 230


def test_texture_sets_colour_the_surfaces_they_are_on(renderer: Any, tmp_path: Path) -> None:
    write_texture_sets(tmp_path / "tex", size=32)
    red = tmp_path / "tex" / "red"
    red.mkdir()
    Image.fromarray(np.tile(np.array([220, 20, 20], np.uint8), (8, 8, 1))).save(red / "red_basecolor.png")
    uri = (tmp_path / "tex").as_uri()
    light = World(color=(0.0, 0.0, 0.0), environment=Environment(uri=STUDIO, id="studio.exr", visible=False))
    textured = Material(color=(0.1, 0.1, 0.9), texture=Texture(uri=uri, id="red", tile=0.5))
    out = _render(renderer, _scene(light, floor=textured))
    floor = out.rgb[(out.index == 0) & (out.depth < post.BACKGROUND_DEPTH)].mean(axis=0)
    assert floor[0] > 3 * floor[2]  # the set's red, not the material's blue fallback colour
    plain = _render(renderer, _scene(light, floor=Material(color=(0.1, 0.1, 0.9))))
    floor = plain.rgb[(plain.index == 0) & (plain.depth < post.BACKGROUND_DEPTH)].mean(axis=0)
    assert floor[2] > 3 * floor[0]


def test_spec_textures_reach_the_backdrops_of_a_sample(renderer: Any, tmp_path: Path) -> None:
    write_texture_sets(tmp_path / "tex", size=32)
    uri = (tmp_path / "tex").as_uri()
    spec = builders.spec(RENDER, categories=[{"name": "fluids"}], render={**RENDER["render"], "passes": ["rgb", "segmentation"]},
                     assets={"textures": [{"uri": uri}]})
    a = render_sample(spec, plan_sample(spec, 2), renderer, dataset="t")
    used = {p["material"]["texture"]["id"] for p in a.meta["scene"]["background"] if p["material"]["texture"]}
    assert used and used <= {"wood", "tiles", "concrete"}
    b = render_sample(spec, plan_sample(spec, 2), renderer, dataset="t")
    assert a.files["png"] == b.files["png"]  # textured samples re-render identically


def test_hdri_and_texture_images_stay_within_their_memory_bounds(renderer: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from synth_render.blender import materials, world

    monkeypatch.setattr(world, "MAX_ENVIRONMENT_BYTES", 2 * 1024 * 512 * 16)  # two 1K HDRIs
    monkeypatch.setattr(materials, "MAX_TEXTURE_IMAGES", 4)
    write_texture_sets(tmp_path / "tex", size=16)
    uri = (tmp_path / "tex").as_uri()
    before = len(renderer._bpy.data.images)
    for env_id, set_id in [("city.exr", "wood"), ("forest.exr", "tiles"), ("sunset.exr", "concrete"),
                           ("city.exr", "wood")]:
        world = World(environment=Environment(uri=STUDIO, id=env_id, visible=False))
        out = _render(renderer, _scene(world, floor=Material(texture=Texture(uri=uri, id=set_id))), size=32)
        assert float(out.rgb.mean()) > 0.01
        assert renderer._env.cached <= 2 and renderer._textures.cached <= 4
    assert len(renderer._bpy.data.images) <= before + 2 + 4


def test_every_shape_mesh_fits_the_bounds_placement_relies_on(renderer: Any) -> None:
    from synth_render.scene import SHAPE_BOUNDS

    for name, (lo, hi) in SHAPE_BOUNDS.items():
        mesh = renderer._meshes[name]
        co = np.array([v.co[:] for v in mesh.vertices])
        assert len(mesh.polygons) > 0, name
        assert (co.min(axis=0) >= np.array(lo) - 1e-5).all() and (co.max(axis=0) <= np.array(hi) + 1e-5).all(), name
        assert np.allclose(co.max(axis=0), hi, atol=1e-5), name  # tight: the top is where things stack


def _write_exr(path: Path, rgb: tuple[float, float, float]) -> None:
    import OpenEXR

    px = np.empty((32, 64, 3), np.float32)
    px[:] = rgb
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, {"RGB": px}) as f:
        f.write(str(path))


def test_a_folder_of_hdris_lights_the_samples(renderer: Any, tmp_path: Path) -> None:
    (tmp_path / "hdri" / "dusk").mkdir(parents=True)
    _write_exr(tmp_path / "hdri" / "dusk" / "red.exr", (3.0, 0.4, 0.3))
    uri = (tmp_path / "hdri").as_uri()
    spec = builders.spec(RENDER, categories=[{"name": "geometry"}], render={**RENDER["render"], "passes": ["rgb", "segmentation"]},
                     assets={"environments": [{"uri": uri}]})
    sample = render_sample(spec, plan_sample(spec, 0), renderer, dataset="t")
    assert sample.meta["environment"]["uri"] == uri and sample.meta["environment"]["id"] == "dusk/red.exr"
    rgb = np.asarray(Image.open(BytesIO(sample.files["png"]))).reshape(-1, 3).mean(axis=0)
    assert rgb[0] > 1.5 * rgb[2]  # the red sky tints the whole scene


def test_no_environments_means_flat_skies_and_lamps(renderer: Any) -> None:
    spec = builders.spec(RENDER, categories=[{"name": "characters"}], render={**RENDER["render"], "passes": ["rgb", "segmentation"]},
                     assets={"environments": []})
    sample = render_sample(spec, plan_sample(spec, 1), renderer, dataset="t")
    assert "environment" not in sample.meta and sample.meta["scene"]["world"]["environment"] is None
    assert sample.meta["scene"]["lights"]  # the sun and fill lamps of the flat-sky fallback
