"""Ground truth beyond the base passes, for ``sample.render_sample``: what to ask the renderer
for, how to annotate a rendered attempt, and how to encode the extra files.

Three calls keep ``sample.py`` small: ``extras_for`` (the renderer request), ``annotate``
(per-object 3D fields, intrinsic arrays; after each attempt) and ``add_files`` (caption,
extra passes and scene file of the kept attempt). File names: ``{key}.albedo.png``,
``{key}.roughness.png``, ``{key}.metallic.png`` (8-bit), ``{key}.flow.exr`` (float32 R=u,
G=v pixels towards the next frame), ``{key}.depth.exr`` (float32 Y, metres, 0 = no surface),
``{key}.sem.png`` (class ids), ``{key}.txt`` (caption), ``{key}.glb``/``{key}.blend``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synth_contract import classes
from synth_contract.api import SynthDatasetSpec
from synth_render import captions, groundtruth, post
from synth_render.assets.runtime import category_assets
from synth_render.rendering import Extras
from synth_render.scene import Scene


def dataset_vocabulary(spec: SynthDatasetSpec) -> list[dict[str, Any]]:
    """``dataset.json`` ``classes``: the spec's built-in classes plus every class of the libraries it uses."""
    extra: set[str] = set()
    if any(c.assets is not None and c.assets.libraries for c in spec.categories):
        for c in spec.categories:
            for lib in category_assets(spec, str(c.name))[0]:
                extra.update(lib.classes)
    return classes.spec_vocabulary(spec, extra)


def extras_for(spec: SynthDatasetSpec, scene: Scene, width: int, height: int) -> Extras:
    """The renderer's ``extras`` request for a sample."""
    passes = {str(p) for p in spec.render.passes}
    plan = groundtruth.amodal_groups(scene, width, height)
    return Extras(albedo="albedo" in passes, aovs=bool({"roughness", "metallic"} & passes), flow="flow" in passes,
                  amodal_groups=plan.groups, save_scene=str(spec.output.save_scene))


def annotate(spec: SynthDatasetSpec, scene: Scene, out: Any, seg: np.ndarray, meta: dict[str, Any],
             arrays: dict[str, np.ndarray]) -> None:
    """Add the 3D fields to ``meta['objects']`` and the extra arrays to ``arrays`` (in place)."""
    vocab = classes.class_ids(dataset_vocabulary(spec))
    counts = {int(o["id"]): int(o["pixels"]) for o in meta["objects"]}
    amodal = groundtruth.amodal_stats(getattr(out, "amodal", ()), seg) if getattr(out, "amodal", ()) else None
    recs = groundtruth.object_records(scene, scene.camera, visible_pixels=counts, amodal=amodal, class_ids=vocab)
    for o in meta["objects"]:
        o.update(recs.get(int(o["id"]), {}))
    meta["groundTruth"] = dict(groundtruth.CONVENTIONS)
    surface = out.depth < post.BACKGROUND_DEPTH
    if getattr(out, "albedo", None) is not None:
        arrays["albedo"] = post.linear_to_srgb8(out.albedo)
    for name in ("roughness", "metallic"):
        if getattr(out, name, None) is not None:
            arrays[name] = post.encode_unit_gray(getattr(out, name), surface)
    if getattr(out, "flow", None) is not None:
        arrays["flow"] = np.asarray(out.flow, dtype=np.float32)
    if getattr(out, "scene_file", None) is not None:
        arrays["scene_file"] = np.frombuffer(out.scene_file, dtype=np.uint8)
    meta["render"]["amodalRenders"] = len(getattr(out, "amodal", ()))  # no timings here: samples stay byte-identical


def add_files(spec: SynthDatasetSpec, meta: dict[str, Any], arrays: dict[str, np.ndarray], files: dict[str, bytes],
              *, png: Any, rgb: np.ndarray) -> None:
    """Encode the extra passes, the caption and the scene file of the kept attempt (in place)."""
    passes = {str(p) for p in spec.render.passes}
    if "depth" in passes and str(spec.render.depth_format) == "exr":
        files.pop("depth.png", None)
        depth = np.where(arrays["depth"] < post.BACKGROUND_DEPTH, arrays["depth"], 0.0)
        files["depth.exr"] = post.exr_bytes({"Y": np.nan_to_num(depth, nan=0.0)})
        meta["depth"] = {"format": "exr", "channel": "Y", "unit": "m", "zero": "no surface", "kind": "planar (camera z)"}
    for name in ("albedo", "roughness", "metallic"):
        if name in passes and name in arrays:
            files[f"{name}.png"] = png(arrays[name])
    if "albedo" in passes:
        meta["albedo"] = {"source": "Principled BSDF base colour (Cycles shader AOV)", "encoding": "sRGB 8-bit"}
    if passes & {"roughness", "metallic"}:
        meta["aovs"] = {"encoding": "round(value * 255), 0 where no surface", "source": "Principled BSDF inputs"}
    if "flow" in passes and "flow" in arrays:
        f = arrays["flow"]
        files["flow.exr"] = post.exr_bytes({"R": f[..., 0], "G": f[..., 1]})
        meta["flow"] = {"format": "exr", "channels": {"R": "u", "G": "v"}, "unit": "pixels",
                        "direction": "current frame to next frame, +u right, +v down"}
    vocab = dataset_vocabulary(spec)
    meta["classIds"] = sorted({int(o["classId"]) for o in meta["objects"] if "classId" in o})
    if "semantic" in passes:
        sem = groundtruth.semantic_mask(arrays["seg"], {int(o["id"]): int(o["classId"]) for o in meta["objects"]
                                                        if "classId" in o})
        files["sem.png"] = png(sem)
        meta["semantic"] = {"values": "classId from dataset.json classes, 0 = background"}
    if "scene_file" in arrays:
        files[str(spec.output.save_scene)] = arrays["scene_file"].tobytes()
    fn = captions.load_captioner(str(spec.render.captioner))
    if fn is not None:
        text = str(fn(meta, rgb)).strip() if fn is captions.caption else \
            captions.call_captioner(str(spec.render.captioner), fn, meta, rgb)
        meta["caption"] = text
        meta["captionCheck"] = captions.caption_check(
            text, visible_classes={str(o.get("class")) for o in captions.visible_objects(meta)},
            vocabulary=[c["name"] for c in vocab])
        files["txt"] = text.encode()
