"""One sample's metadata as the data contract defines it: what must be there, and its index row.

Pure functions on the decoded ``{key}.json`` of a sample. ``metadata_problems`` lists what a
training pipeline would trip over (a missing field, a seed that does not match the planner,
a bounding box outside the frame). ``index_row`` (which flattens the metadata into the columns
of ``index/metadata.parquet``) lives in ``synth_contract.index_rows``, shared with the worker
that writes the per-shard index parts; it is re-exported here.
"""

from __future__ import annotations

from typing import Any

from synth_contract import planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.index_rows import (  # the index row lives in the contract: the worker writes parts with it
    INDEX_SCHEMA,
    QUALITY_COMPONENTS,
    index_row,
    object_class,
    png_size,
    quality_columns,
    quality_score,
)

__all__ = ["INDEX_SCHEMA", "QUALITY_COMPONENTS", "REQUIRED_FIELDS", "index_row", "metadata_problems",
           "object_class", "png_size", "quality_columns", "quality_score"]

REQUIRED_FIELDS: tuple[str, ...] = (
    "index", "seed", "category", "shard", "scene", "render", "camera", "objects", "quality",
)
"""Top-level fields every sample's metadata carries (docs/ARCHITECTURE.md, "Fixed names")."""

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
