"""One sample, end to end: plan it from the spec, generate its scene, render, gate, encode.

Pure planning (``plan_sample``, ``scene_for``, ``adaptive_spp``) plus ``render_sample``, which
drives a renderer passed in and returns the sample's files (PNG/JSON bytes) and metadata. The
worker and ``synthctl render-sample`` both call this, so a re-rendered sample is the same as
the one in the shard.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

import synth_render.sensor as sensor
from synth_contract import planning
from synth_contract.api import SynthDatasetSpec
from synth_render import annotate, content, frames, post, quality, strata, views
from synth_render.assets import runtime as assets_runtime
from synth_render.generators import GENERATORS, GenConfig
from synth_render.generators.staging import stage
from synth_render.rendering import Renderer
from synth_render.sampling import r_sequence, rotate, weighted_point
from synth_render.scene import Scene, scene_to_dict

SCHEMA = "parallel-synth/sample/v1"


@dataclass(frozen=True)
class SamplePlan:
    """Everything about a sample that follows from the spec and its global index."""

    index: int
    key: str
    seed: int
    category: str
    rank: int
    shard: int
    width: int
    height: int


def plan_sample(spec: SynthDatasetSpec, index: int) -> SamplePlan:
    seed = planning.sample_seed(spec.seed, spec.version, index)
    width, height = planning.resolution_of(spec, seed)
    return SamplePlan(index=index, key=planning.sample_key(index), seed=seed,
                      category=planning.category_of(spec, index), rank=planning.category_rank(spec, index),
                      shard=planning.shard_of(spec, index), width=width, height=height)


def strata_for(spec: SynthDatasetSpec, plan: SamplePlan, attempt: int) -> tuple[float, ...]:
    """The stratified point of a sample; a re-render moves it to another stratum."""
    shift = tuple(planning.unit_hash(spec.seed, f"strata:{plan.category}:{k}") for k in range(8))
    point = r_sequence(plan.rank, shift=shift)
    if attempt:
        point = rotate(point, planning.unit_hash(planning.derived_seed(plan.seed, attempt), "strata"))
    point = weighted_point(plan.category, point, planning.factor_weights(spec, plan.index))  # schedule factors
    return tuple(round(u, 9) for u in point)


def scene_for(spec: SynthDatasetSpec, plan: SamplePlan, attempt: int = 0) -> tuple[Scene, GenConfig]:
    """The scene of a sample (attempt > 0: a quality re-render with a derived seed)."""
    seed = planning.derived_seed(plan.seed, attempt)
    config = GenConfig(category=plan.category, seed=seed, rank=plan.rank, strata=strata_for(spec, plan, attempt),
                       aspect=plan.width / plan.height,
                       environments=content.environment_catalog(tuple(e.uri for e in spec.assets.environments)),
                       textures=content.texture_catalog(tuple(t.uri for t in spec.assets.textures)))
    scene = GENERATORS[plan.category](config, np.random.default_rng(seed))
    scene = assets_runtime.apply(spec, scene, seed=seed, rank=plan.rank)
    return stage(spec, scene, seed=seed, aspect=config.aspect), config  # physics settling, framing


def adaptive_spp(spec: SynthDatasetSpec, complexity: float) -> int:
    """Samples per pixel within the spec's range, rising with scene complexity."""
    lo, hi = spec.render.samples.min, spec.render.samples.max
    return int(min(hi, max(lo, round(lo + (hi - lo) * min(max(complexity, 0.0), 1.0)))))


def png_bytes(array: np.ndarray) -> bytes:
    """Deterministic PNG encoding (8-bit RGB/grey or 16-bit grey)."""
    if array.dtype == np.uint16 and array.ndim != 2:
        raise ValueError("16-bit PNGs must be single channel")
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG arrays must be uint8 or uint16, got {array.dtype}")
    img = Image.fromarray(np.ascontiguousarray(array))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class RenderedSample:
    key: str
    files: dict[str, bytes]
    meta: dict[str, Any]
    score: float
    passed: bool
    attempts: int
    render_seconds: float
    simulation: dict[str, Any] | None = None
    """The bake of a simulated sample: the JSON's ``simulation`` plus ``seconds`` and ``cacheHit``."""


def _attempt(spec: SynthDatasetSpec, plan: SamplePlan, renderer: Renderer, attempt: int,
             passes: list[str]) -> tuple[dict[str, Any], dict[str, np.ndarray], float]:
    scene, config = scene_for(spec, plan, attempt)
    spp = adaptive_spp(spec, scene.complexity)
    cameras = views.cameras_for(spec, scene, config.seed)
    frame_cams = frames.cameras_for(spec, scene)
    more: dict[str, Any] = {"views": cameras[1:]} if len(cameras) > 1 else {}
    if len(frame_cams) > 1:
        more["frames"] = frame_cams
        if spec.render.frames.motion_blur:
            more["frame_motion_blur"] = True
    out = renderer.render(scene, width=plan.width, height=plan.height, spp=spp, denoise=spec.render.denoise,
                          seed=config.seed, normals="normals" in passes,
                          extras=annotate.extras_for(spec, scene, plan.width, plan.height),
                          **more)
    out, rgb, sensed = sensor.process(spec.render.sensor, out, post.intrinsics(scene.camera, plan.width, plan.height),
                                      seed=config.seed, single_view=len(cameras) == 1 and len(frame_cams) <= 1)
    seg = post.encode_segmentation(out.index)
    arrays = {"rgb": rgb, "seg": seg, "depth": out.depth}
    if out.normals is not None:
        arrays["normals"] = post.encode_normals(post.normals_to_camera(out.normals, post.extrinsics(scene.camera)),
                                                out.depth < post.BACKGROUND_DEPTH)
    boxes = post.bboxes_from_mask(seg)
    counts = post.pixel_counts(seg)
    classes = {o.id: o.cls for o in scene.objects}
    meta: dict[str, Any] = {
        "renderSeed": config.seed,
        "attempt": attempt,
        "strataPoint": list(config.strata),
        "params": scene.params,
        "scene": scene_to_dict(scene),
        "render": {"engine": "cycles", "engineVersion": renderer.engine_version, "device": renderer.device,
                   "width": plan.width, "height": plan.height, "spp": spp, "denoise": spec.render.denoise,
                   "passes": passes, "complexity": scene.complexity, "viewTransform": "Standard"},
        "camera": {"intrinsics": post.matrix_json(post.intrinsics(scene.camera, plan.width, plan.height)),
                   "extrinsics": post.matrix_json(post.extrinsics(scene.camera)), "convention": "opencv",
                   "focalMm": scene.camera.focal_mm, "sensorMm": scene.camera.sensor_mm},
        "objects": [{"id": oid, "class": classes.get(oid, "unknown"), "bbox": box, "pixels": counts[oid]}
                    for oid, box in sorted(boxes.items())],
    }
    _content_metadata(meta, scene)
    sensor.annotate(meta, sensed, spec.render.sensor)  # before the gate: it reads the intended noise
    sims = tuple(getattr(out, "simulations", ()))
    if sims:  # the bake behind the sample's liquid/smoke/fire (synth_render.simulation)
        # No wall-clock fields in the JSON (identical samples, identical tar): seconds and cacheHit
        # ride in RenderedSample.simulation (the worker's sample event), under "_run" until then.
        meta["simulation"] = {**{k: v for k, v in sims[0].items() if k not in ("id", "seconds", "cacheHit")},
                              "objects": sorted({int(r["id"]) for r in sims}),
                              "_run": {"seconds": round(sum(float(r["seconds"]) for r in sims if not r["cacheHit"]), 4),
                                       "cacheHit": all(bool(r["cacheHit"]) for r in sims)}}
    annotate.annotate(spec, scene, out, seg, meta, arrays)
    assets_runtime.annotate(meta, scene, renderer)
    views.annotate_views(spec, scene, cameras, out, meta, arrays, png=png_bytes)
    frames.annotate_frames(spec, scene, frame_cams, out, meta, arrays, png=png_bytes)
    quality.gate_metadata(meta, out, rgb, seg, scene_ids=[o.id for o in scene.objects],
                          thresholds=quality.thresholds_for(spec.quality))
    extra = (*getattr(out, "views", ()), *getattr(out, "frames", ()))
    return meta, arrays, out.render_seconds + sum(float(v.render_seconds) for v in extra)


def _content_metadata(meta: dict[str, Any], scene: Scene) -> None:
    """The HDRI that lit the scene (top-level ``environment``) and which objects are clutter."""
    env = scene.world.environment
    if env is not None:
        meta["environment"] = {"uri": env.uri, "id": env.id, "strength": env.strength, "rotation": env.rotation,
                               "visible": env.visible}
    clutter = {o.id for o in scene.objects if o.distractor}
    for o in meta["objects"]:
        if o["id"] in clutter:
            o["distractor"] = True


def _passes_gate(meta: dict[str, Any], min_score: float) -> bool:
    """No failure reason from the gate and a score of at least ``minScore``."""
    return not meta["quality"].get("reasons") and float(meta["quality"]["score"]) >= min_score


def _rank(meta: dict[str, Any]) -> tuple[bool, float]:
    """The best attempt: one without failure reasons first, then the highest score."""
    return not meta["quality"].get("reasons"), float(meta["quality"]["score"])


def render_sample(spec: SynthDatasetSpec, plan: SamplePlan, renderer: Renderer, *, dataset: str) -> RenderedSample:
    """Render a sample, re-rendering with derived seeds while it scores under ``quality.minScore``."""
    spec = planning.spec_for_category(spec, plan.category)  # its category's render.views / render.frames
    passes = [str(p) for p in spec.render.passes]
    best: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None
    seconds = 0.0
    attempts = 0
    for attempt in range(spec.quality.max_rerenders + 1):
        meta, arrays, secs = _attempt(spec, plan, renderer, attempt, passes)
        seconds += secs
        attempts += 1
        if best is None or _rank(meta) > _rank(best[0]):
            best = (meta, arrays)
        if _passes_gate(meta, spec.quality.min_score):
            break
    assert best is not None
    meta, arrays = best
    sim_run = meta["simulation"].pop("_run") if "simulation" in meta else None
    score = float(meta["quality"]["score"])
    passed = _passes_gate(meta, spec.quality.min_score)
    meta = {"schema": SCHEMA, "key": plan.key, "index": plan.index, "seed": plan.seed, "category": plan.category,
            "categoryRank": plan.rank, "shard": plan.shard, "dataset": dataset, "version": spec.version, **meta}
    meta["quality"] = {**meta["quality"], "passed": passed, "attempts": attempts, "minScore": spec.quality.min_score}
    meta["strata"] = strata.strata_of(meta)  # named factor values (synth_render.strata)
    files = {"png": png_bytes(arrays["rgb"])}
    if "depth" in passes:
        depth16, scale = post.encode_depth(arrays["depth"])
        files["depth.png"] = png_bytes(depth16)
        meta["depth"] = {"scale": scale, "unit": "m", "zero": "no surface", "kind": "planar (camera z)"}
    if "segmentation" in passes:
        files["seg.png"] = png_bytes(arrays["seg"])
    if "normals" in passes:
        files["normals.png"] = png_bytes(arrays["normals"])
        meta["normals"] = {"space": "camera", "convention": "opencv (+x right, +y down, +z forward; "
                           "surfaces facing the camera have z < 0)", "encoding": "(n + 1) / 2 * 255, 0 = no surface"}
    annotate.add_files(spec, meta, arrays, files, png=png_bytes, rgb=arrays["rgb"])
    views.add_files(meta, arrays, files)
    frames.add_files(meta, arrays, files)
    if quality.caption_verdict(meta):
        passed = False
    files["json"] = json_bytes(meta)
    if math.isnan(score):
        raise ValueError("quality score is NaN")
    return RenderedSample(key=plan.key, files=files, meta=meta, score=score, passed=passed, attempts=attempts,
                          render_seconds=seconds,
                          simulation={**meta["simulation"], **sim_run} if sim_run is not None else None)
