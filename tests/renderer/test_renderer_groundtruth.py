"""Per-object 3D ground truth, intrinsic passes and captions (issue #14).

Pure tests run on scene descriptions; the Blender tests render 64x64 scenes built by hand
so that the expected answer (base colour, occlusion, truncation) is known.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import builders
import numpy as np
import pytest
from builders import RENDER
from PIL import Image

from synth_contract.classes import CATEGORY_CLASSES, spec_vocabulary
from synth_render import captions, groundtruth, post
from synth_render.sample import plan_sample, scene_for
from synth_render.scene import (
    Camera,
    Environment,
    Light,
    Material,
    Part,
    Scene,
    SceneObject,
    World,
    scene_to_dict,
)

ALL = [{"name": c, "weight": 1} for c in CATEGORY_CLASSES]


@functools.lru_cache(maxsize=2)
def _all_scenes(n_per_category: int = 12) -> list[tuple[Any, Scene]]:
    spec = builders.spec(RENDER, samples=n_per_category * len(ALL), categories=ALL)
    out = []
    for i in range(spec.samples):
        plan = plan_sample(spec, i)
        out.append((plan, scene_for(spec, plan)[0]))
    return out


def test_every_generated_class_is_in_the_vocabulary() -> None:
    for plan, scene in _all_scenes(20):
        for obj in scene.objects:
            assert obj.cls in CATEGORY_CLASSES[plan.category], (plan.category, obj.cls)


def test_vocabulary_is_sorted_and_starts_at_one() -> None:
    spec = builders.spec(RENDER, categories=[{"name": "vehicles", "weight": 1}, {"name": "fluids", "weight": 1}])
    vocab = spec_vocabulary(spec)
    assert [c["id"] for c in vocab] == list(range(1, len(vocab) + 1))
    assert [c["name"] for c in vocab] == sorted(c["name"] for c in vocab)
    assert {"car", "van", "truck", "glass", "puddle"} <= {c["name"] for c in vocab}


def _meta(scene: Scene, visible_ids: list[int], seed: int = 5) -> dict[str, Any]:
    return {"seed": seed, "scene": json.loads(json.dumps(scene_to_dict(scene))),
            "camera": {"extrinsics": post.extrinsics(scene.camera).tolist()},
            "objects": [{"id": o.id, "class": o.cls, "pixels": 100} for o in scene.objects if o.id in visible_ids]}


def test_captions_name_exactly_the_visible_objects_on_generated_scenes() -> None:
    vocab = sorted({c for v in CATEGORY_CLASSES.values() for c in v})
    texts = []
    for _, scene in _all_scenes(6):
        visible = [o.id for o in scene.objects][::2]  # every other object is "occluded"
        meta = _meta(scene, visible, seed=len(texts))
        text = captions.caption(meta)
        texts.append(text)
        vis_classes = {o.cls for o in scene.objects if o.id in visible}
        assert captions.caption_check(text, visible_classes=vis_classes, vocabulary=vocab) == [], text
    assert len(set(texts)) >= 0.9 * len(texts)  # diverse: hardly two captions alike


def _red_cube_scene() -> Scene:
    red = Material(color=(0.8, 0.1, 0.1), pattern="plain", roughness=0.5)
    blue = Material(color=(0.1, 0.2, 0.8), pattern="plain", roughness=0.1)
    cube = SceneObject(id=1, cls="cube", parts=(Part("cube", red),), location=(-0.9, 0.0, 0.5))
    ball = SceneObject(id=2, cls="sphere", parts=(Part("sphere", blue),), location=(0.9, 0.0, 0.5))
    cone = SceneObject(id=3, cls="cone", parts=(Part("cone", red),), location=(0.0, 9.0, 0.5))
    return Scene(category="geometry", objects=(cube, ball, cone), lights=(Light("sun", (0, 0, 5), energy=3.0),),
                 camera=Camera(location=(0.0, -6.0, 1.5), look_at=(0.0, 0.0, 0.5)), world=World(color=(0.3, 0.3, 0.3)))


def test_hand_checked_caption() -> None:
    scene = _red_cube_scene()
    text = captions.caption(_meta(scene, [1, 2]))
    assert "red" in text and "cube" in text and "blue" in text and "sphere" in text
    assert "cone" not in text
    assert "the red cube is to the left of the blue sphere" in text.lower()
    assert "sunlight" in text
    forest = dataclasses.replace(scene, world=dataclasses.replace(
        scene.world, environment=Environment(uri="builtin:studiolights", id="forest.exr")))
    assert "forest" in captions.caption(_meta(forest, [1, 2]))
    odd = dataclasses.replace(forest, world=dataclasses.replace(
        forest.world, environment=Environment(uri="file:///hdri", id="cone_factory.exr")))
    assert "cone" not in captions.caption(_meta(odd, [1, 2]))  # file names never reach a caption
    assert captions.caption_check(text, visible_classes={"cube", "sphere"}, vocabulary=["cube", "sphere", "cone"]) == []
    assert captions.caption_check("A red cube.", visible_classes={"cube", "sphere"},
                                  vocabulary=["cube", "sphere", "cone"]) == ["caption does not mention visible 'sphere'"]
    assert captions.caption_check("Two cones and a cube and a sphere.", visible_classes={"cube", "sphere"},
                                  vocabulary=["cube", "sphere", "cone"]) == [
        "caption mentions 'cone', which is not visible"]


def test_user_captioner_hook() -> None:
    fn = captions.load_captioner("test_renderer_groundtruth:_my_captioner")
    assert fn is not None and fn({"objects": []}, None) == "mine"
    assert captions.load_captioner("none") is None
    with pytest.raises(ValueError, match=r"render\.captioner"):
        captions.load_captioner("no_such_entry_point")


def _my_captioner(meta: dict[str, Any], rgb: Any) -> str:
    return "mine"


def test_pose_and_box3d_follow_the_camera() -> None:
    scene = _red_cube_scene()
    e = post.extrinsics(scene.camera)
    cube = scene.objects[0]
    pose = groundtruth.object_pose(cube, e)
    centre_world = np.array([*cube.location, 1.0])
    assert np.allclose(pose[:3, 3], (e @ centre_world)[:3])
    box = groundtruth.box3d(cube, e)
    assert np.allclose(box["size"], [1, 1, 1]) and np.allclose(box["center"], pose[:3, 3])
    plan = groundtruth.amodal_groups(scene, 64, 64)
    assert plan.offscreen == () or 3 not in {i for g in plan.groups for i in g}


# --------------------------------------------------------------------------- Blender


def _mask_inside_box(mask: np.ndarray, box: dict[str, Any], k: np.ndarray) -> bool:
    c = groundtruth.box_corners(box)
    uv = (k @ c.T).T
    uv = uv[:, :2] / uv[:, 2:3]
    ys, xs = np.nonzero(mask)
    return bool(xs.min() >= uv[:, 0].min() - 1 and xs.max() + 1 <= uv[:, 0].max() + 1
                and ys.min() >= uv[:, 1].min() - 1 and ys.max() + 1 <= uv[:, 1].max() + 1)


@pytest.mark.blender
def test_rendered_sample_ground_truth(renderer: Any) -> None:
    """One 64 px composition sample with every extra pass: box3d covers each mask, fields are sane."""
    import io

    from synth_render.sample import render_sample

    spec = builders.spec(RENDER, categories=[{"name": "composition", "weight": 1}],
                     render={**RENDER["render"], "passes": ["rgb", "depth", "segmentation", "normals", "albedo", "roughness", "metallic",
                                        "flow", "semantic"], "depthFormat": "exr"},
                     output={"uri": "file:///tmp/unused", "saveScene": "glb"})
    s = render_sample(spec, plan_sample(spec, 1), renderer, dataset="d")
    meta = s.meta
    seg = np.asarray(Image.open(io.BytesIO(s.files["seg.png"])))
    sem = np.asarray(Image.open(io.BytesIO(s.files["sem.png"])))
    k = np.asarray(meta["camera"]["intrinsics"])
    vocab = {c["name"]: c["id"] for c in spec_vocabulary(spec)}
    assert meta["objects"]
    for o in meta["objects"]:
        assert o["classId"] == vocab[o["class"]]
        assert (sem[seg == o["id"]] == o["classId"]).all()
        assert _mask_inside_box(seg == o["id"], o["box3d"], k), o
        assert 0 < o["visibleFraction"] <= 1 and isinstance(o["truncated"], bool)
        assert np.allclose(np.asarray(o["pose"])[3], [0, 0, 0, 1])
    depth = post.read_exr_bytes(s.files["depth.exr"])["Y"]
    assert depth.shape == seg.shape and depth[seg > 0].min() > 0
    assert post.read_exr_bytes(s.files["flow.exr"])["R"].shape == seg.shape
    assert s.files["txt"].decode() == meta["caption"] and meta["captionCheck"] == []
    assert meta["normals"]["space"] == "camera"
    assert s.files["glb"][:4] == b"glTF"  # output.saveScene: the sample's scene as binary glTF


@pytest.mark.blender
def test_albedo_occlusion_and_truncation(renderer: Any) -> None:
    """A plain red cube's albedo is its base colour; a cube half hidden behind another has a
    visible fraction near 1/2; a cube cut by the frame border is truncated."""
    from synth_render.annotate import extras_for  # noqa: F401  (the sample path is tested above)
    from synth_render.rendering import Extras

    red = Material(color=(0.8, 0.1, 0.1), pattern="plain", roughness=0.5)
    grey = Material(color=(0.5, 0.5, 0.5), pattern="plain", roughness=0.5)
    front = SceneObject(id=1, cls="cube", parts=(Part("cube", grey),), location=(-0.5, -1.5, 0.5))
    back = SceneObject(id=2, cls="cube", parts=(Part("cube", red),), location=(0.0, 0.5, 0.5))
    edge = SceneObject(id=3, cls="cube", parts=(Part("cube", grey),), location=(4.4, 0.5, 0.5))
    scene = Scene(category="geometry", objects=(front, back, edge), lights=(Light("sun", (0, 0, 5), energy=3.0),),
                  camera=Camera(location=(0.0, -8.0, 0.5), look_at=(0.0, 0.0, 0.5)))
    plan = groundtruth.amodal_groups(scene, 64, 64)
    out = renderer.render(scene, width=64, height=64, spp=4, denoise=False, seed=3,
                          extras=Extras(albedo=True, amodal_groups=plan.groups))
    seg = post.encode_segmentation(out.index)
    stats = groundtruth.amodal_stats(out.amodal, seg)
    counts = post.pixel_counts(seg)
    recs = groundtruth.object_records(scene, scene.camera, visible_pixels=counts, amodal=stats, class_ids={"cube": 1})
    assert recs[1]["visibleFraction"] > 0.97 and not recs[1]["truncated"]
    assert 0.3 < recs[2]["visibleFraction"] < 0.75
    assert recs[3]["truncated"] and not recs[2]["truncated"]
    inner = (seg == 2) & np.pad(np.ones((60, 60), bool), 2)
    assert np.allclose(np.median(out.albedo[inner], axis=0), red.color, atol=0.02)


@pytest.mark.blender
def test_flow_points_where_the_object_moves(renderer: Any) -> None:
    from synth_render.rendering import Extras

    cube = SceneObject(id=1, cls="cube", parts=(Part("cube", Material()),), location=(0, 0, 0.5),
                       velocity=(0.2, 0.0, 0.0))
    scene = Scene(category="motion", objects=(cube,), lights=(Light("sun", (0, 0, 5)),),
                  camera=Camera(location=(0, -6, 0.5), look_at=(0, 0, 0.5)))
    out = renderer.render(scene, width=64, height=64, spp=2, denoise=False, seed=1, extras=Extras(flow=True))
    seg = post.encode_segmentation(out.index)
    k, e = post.intrinsics(scene.camera, 64, 64), post.extrinsics(scene.camera)
    uv, _ = post.project(np.array([[0, 0, 0.5], [0.2, 0, 0.5]]), k, e)
    expected = uv[1] - uv[0]  # the centre's motion; the nearer front face moves a little more
    got = np.median(out.flow[seg == 1], axis=0)
    assert got[0] == pytest.approx(expected[0], rel=0.15) and abs(got[1]) < 0.05
