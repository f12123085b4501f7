"""One sample's metadata as the data contract defines it: what must be there, and its index row.

Pure functions on the decoded ``{key}.json`` of a sample. ``metadata_problems`` lists what a
training pipeline would trip over (a missing field, a seed that does not match the planner,
a bounding box outside the frame); ``index_row`` flattens the metadata into the columns of
``index/metadata.parquet`` while keeping the full JSON in one column, so no information is
lost and the common filters (category, score, size) need no JSON parsing.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pyarrow as pa

from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec

REQUIRED_FIELDS: tuple[str, ...] = (
    "index", "seed", "category", "shard", "scene", "render", "camera", "objects", "quality",
)
"""Top-level fields every sample's metadata carries (DESIGN.md, "Names")."""

QUALITY_COMPONENTS: tuple[str, ...] = (
    "score", "noise", "exposure", "clipping", "contrast", "entropy", "coverage", "visibility", "masks",
    "noiseSigma", "mean", "clipped", "visibleObjects", "expectedObjects",
)
"""The quality gate's figures copied from ``{key}.json`` ``quality`` into the index's ``quality`` column."""


def quality_columns(meta: dict[str, Any]) -> tuple[bool | None, dict[str, float | None]]:
    """(passed, {component: value}) of a sample, ``None`` where the metadata lacks them."""
    q = meta.get("quality") if isinstance(meta.get("quality"), dict) else {}
    assert isinstance(q, dict)
    comps = {k: float(q[k]) if isinstance(q.get(k), int | float) and not isinstance(q.get(k), bool) else None
             for k in QUALITY_COMPONENTS}
    passed = q.get("passed")
    return (passed if isinstance(passed, bool) else None), comps


INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("index", pa.int64()),
        ("shard", pa.int64()),
        ("category", pa.string()),
        ("seed", pa.int64()),
        ("score", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("tar", pa.string()),
        ("members", pa.list_(pa.string())),
        ("num_objects", pa.int32()),
        (
            "objects",
            pa.list_(
                pa.struct([("id", pa.int32()), ("class", pa.string()), ("bbox", pa.list_(pa.int32()))])
            ),
        ),
        ("metadata", pa.string()),
        ("passed", pa.bool_()),
        ("quality", pa.struct([(name, pa.float64()) for name in QUALITY_COMPONENTS])),
        ("caption", pa.string()),
        ("classIds", pa.list_(pa.int32())),
        ("num_views", pa.int32()),  # cameras of a multi-view sample (render.views), 1 otherwise
        ("num_frames", pa.int32()),  # frames of a sequence (render.frames), 1 otherwise
    ]
)
"""Columns of ``index/metadata.parquet`` (``metadata`` holds the sample's whole JSON)."""


def quality_score(meta: dict[str, Any]) -> float | None:
    """The sample's quality score (0..1), wherever the renderer put it."""
    q = meta.get("quality")
    value = q.get("score") if isinstance(q, dict) else q
    if value is None:
        value = meta.get("score")
    return float(value) if isinstance(value, int | float) else None


def object_class(obj: dict[str, Any]) -> str:
    for k in ("class", "cls", "className", "label", "name"):
        if isinstance(obj.get(k), str):
            return str(obj[k])
    return ""


def png_size(header: bytes) -> tuple[int, int] | None:
    """(width, height) from the first 24 bytes of a PNG, or ``None`` if it is not one."""
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", header[16:24])
    return int(w), int(h)


def _matrix(value: Any, rows: int, cols: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == rows
        and all(isinstance(r, list) and len(r) == cols and all(isinstance(x, int | float) for x in r) for r in value)
    )


def metadata_problems(
    meta: Any, *, key: str, shard: int, spec: SynthDatasetSpec | None, size: tuple[int, int] | None
) -> list[str]:
    """What is wrong with one sample's metadata (empty list: nothing)."""
    if not isinstance(meta, dict):
        return ["metadata is not a JSON object"]
    problems = [f"missing field {f!r}" for f in REQUIRED_FIELDS if f not in meta]
    index = meta.get("index")
    if isinstance(index, int):
        if planning.sample_key(index) != key:
            problems.append(f"key {key!r} does not match index {index} (expected {planning.sample_key(index)!r})")
        if meta.get("shard") is not None and meta.get("shard") != shard:
            problems.append(f"metadata says shard {meta.get('shard')}, found in shard {shard}")
        if spec is not None:
            if not 0 <= index < spec.samples:
                problems.append(f"index {index} outside the dataset (0..{spec.samples - 1})")
            else:
                if index // spec.shard_size != shard:
                    problems.append(f"index {index} belongs to shard {index // spec.shard_size}, not {shard}")
                expected_cat = planning.category_of(spec, index)
                if "category" in meta and meta["category"] != expected_cat:
                    problems.append(f"category {meta['category']!r}, planner says {expected_cat!r}")
                derived = meta.get("derived") if isinstance(meta.get("derived"), dict) else {}
                assert isinstance(derived, dict)
                seed_version = str(derived["from"]) if derived.get("copied") and derived.get("from") else spec.version
                expected_seed = planning.sample_seed(spec.seed, seed_version, index)  # copied: its old seed
                if "seed" in meta and meta["seed"] != expected_seed:
                    problems.append(f"seed {meta['seed']} does not derive from (seed, version, index)")
    elif "index" in meta:
        problems.append("index is not an integer")
    camera = meta.get("camera")
    if "camera" in meta:
        if not isinstance(camera, dict):
            problems.append("camera is not an object")
        else:
            if not _matrix(camera.get("intrinsics"), 3, 3):
                problems.append("camera.intrinsics is not a 3x3 matrix")
            if not _matrix(camera.get("extrinsics"), 4, 4):
                problems.append("camera.extrinsics is not a 4x4 matrix")
    objects = meta.get("objects")
    if "objects" in meta and not isinstance(objects, list):
        problems.append("objects is not a list")
    elif isinstance(objects, list):
        problems += _object_problems(objects, size)
    if "quality" in meta and quality_score(meta) is None:
        problems.append("no quality score")
    return problems


def _object_problems(objects: list[Any], size: tuple[int, int] | None) -> list[str]:
    out = []
    seen: set[int] = set()
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            out.append(f"objects[{i}] is not an object")
            continue
        oid, bbox = obj.get("id"), obj.get("bbox")
        if not isinstance(oid, int) or oid <= 0:
            out.append(f"objects[{i}].id must be an integer > 0 (0 is background)")
        elif oid in seen:
            out.append(f"objects[{i}].id {oid} repeated")
        else:
            seen.add(oid)
        if not object_class(obj):
            out.append(f"objects[{i}] has no class name")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            out.append(f"objects[{i}].bbox is not [x_min, y_min, x_max, y_max]")
            continue
        x0, y0, x1, y1 = bbox
        if x0 > x1 or y0 > y1 or x0 < 0 or y0 < 0:
            out.append(f"objects[{i}].bbox {bbox} is not ordered or negative")
        elif size is not None and (x1 >= size[0] or y1 >= size[1]):
            out.append(f"objects[{i}].bbox {bbox} is outside the {size[0]}x{size[1]} frame")
    return out


def index_row(
    meta: dict[str, Any], *, key: str, shard: int, members: list[str], size: tuple[int, int] | None
) -> dict[str, Any]:
    """The row of ``index/metadata.parquet`` for one sample."""
    objects = meta.get("objects") if isinstance(meta.get("objects"), list) else []
    assert isinstance(objects, list)
    objs = [
        {
            "id": int(o.get("id", 0)),
            "class": object_class(o),
            "bbox": [int(v) for v in o.get("bbox", [])][:4],
        }
        for o in objects
        if isinstance(o, dict)
    ]
    index = meta.get("index")
    seed = meta.get("seed")
    passed, components = quality_columns(meta)
    return {
        "key": key,
        "index": index if isinstance(index, int) else None,
        "shard": shard,
        "category": str(meta.get("category", "")),
        "seed": seed if isinstance(seed, int) else None,
        "score": quality_score(meta),
        "width": size[0] if size else None,
        "height": size[1] if size else None,
        "tar": layout.shard_path(shard),
        "members": members,
        "num_objects": len(objs),
        "objects": objs,
        "metadata": json.dumps(meta, separators=(",", ":"), sort_keys=True),
        "passed": passed,
        "quality": components,
        "caption": meta["caption"] if isinstance(meta.get("caption"), str) else None,
        "classIds": sorted({int(o["classId"]) for o in objects if isinstance(o, dict)
                            and isinstance(o.get("classId"), int)}),
        "num_views": len(meta["views"]) if isinstance(meta.get("views"), list) and meta["views"] else 1,
        "num_frames": len(meta["frames"]) if isinstance(meta.get("frames"), list) and meta["frames"] else 1,
    }
