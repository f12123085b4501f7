"""The rows of a dataset's index, and the per-shard index parts they are written to.

One row per sample: the columns of ``index/metadata.parquet`` (``INDEX_SCHEMA``), flattened
from the sample's ``{key}.json`` by ``index_row`` while keeping the whole JSON in the
``metadata`` column, so the common filters (category, score, size) need no JSON parsing.

The worker writes the rows of each shard it commits to ``index/parts/{shard:08d}.parquet``
(``part_bytes``) before the shard's manifest, which names the part (``indexPart``); the index
and every live reader (pyarrow, DuckDB, Hugging Face ``datasets``) read parts, never tars.
``part_problems`` is the one check of a part that somebody else wrote (validate, index, query):
schema, row count, sha256, and limits on what a hostile file may make a reader allocate.
Both the renderer and the operator import this module (it lives in the contract package).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from synth_contract import layout
from synth_contract.factors import FACTOR_NAMES

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
        ("strata", pa.struct([(name, pa.string()) for name in FACTOR_NAMES])),  # strata.<factor>: its value
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
        "strata": strata_column(meta),
    }


def strata_column(meta: dict[str, Any]) -> dict[str, str | None]:
    """The sample's ``strata`` ({factor: value}, synth_contract.factors) as the index's struct column."""
    st = meta.get("strata") if isinstance(meta.get("strata"), dict) else {}
    assert isinstance(st, dict)
    return {name: str(st[name]) if isinstance(st.get(name), str | int) else None for name in FACTOR_NAMES}


PART_COMPRESSION = "zstd"

MAX_PART_BYTES = 512 * 1024 * 1024
"""A part larger than this is refused unread (a 10,000-sample shard's part is a few MB)."""
MAX_ROW_GROUP_ROWS = 1_000_000
"""A row group with more rows than this is refused (a part holds one shard: one row group)."""
MAX_ROW_GROUP_BYTES = 1024 * 1024 * 1024
"""A row group whose uncompressed size exceeds this is refused before it is decoded."""


def shard_rows_of(samples: Any, shard: int) -> list[dict[str, Any]]:
    """Index rows of a shard's samples, given as ``(key, {extension: bytes})`` in tar order."""
    rows = []
    for key, files in samples:
        if "json" not in files:
            continue
        meta = json.loads(files["json"])
        rows.append(index_row(meta, key=key, shard=shard, members=sorted(files),
                              size=png_size(files.get("png", b"")[:24])))
    return rows


def part_bytes(rows: list[dict[str, Any]]) -> bytes:
    """A parquet file of ``rows`` in ``INDEX_SCHEMA``: one row group, zstd, byte-identical for identical rows."""
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=INDEX_SCHEMA), buf, compression=PART_COMPRESSION,
                   row_group_size=max(len(rows), 1))
    return buf.getvalue()


def part_entry(shard: int, data: bytes, rows: int) -> dict[str, Any]:
    """The manifest's ``indexPart``: where the part is, its sha256, rows and bytes."""
    return {"path": layout.index_part_path(shard), "sha256": hashlib.sha256(data).hexdigest(), "rows": rows,
            "bytes": len(data)}


def part_problems(data: bytes | None, entry: Any, *, shard: int) -> list[str]:
    """What is wrong with a shard's index part against its manifest's ``indexPart`` (empty: nothing).

    Reads the parquet footer only, never decodes a column: a wrong schema, a huge or
    mis-sized row group, or a file that is not parquet is named in one line.
    """
    rel = layout.index_part_path(shard)
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not isinstance(
            entry.get("rows"), int) or isinstance(entry.get("rows"), bool):
        return [f"shard {shard}: manifest indexPart is not {{path, sha256, rows}}"]
    if entry.get("path") not in (None, rel):
        return [f"shard {shard}: manifest indexPart.path is {entry.get('path')!r}, expected {rel!r}"]
    if data is None:
        return [f"shard {shard}: index part {rel} is missing"]
    if len(data) > MAX_PART_BYTES:
        return [f"shard {shard}: index part {rel} has {len(data):,} bytes (more than {MAX_PART_BYTES:,})"]
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return [f"shard {shard}: index part {rel} sha256 does not match the manifest (truncated or replaced)"]
    return footer_problems(data, rows=entry["rows"], where=f"shard {shard}: index part {rel}")


def footer_problems(data: bytes | str, *, rows: int | None, where: str) -> list[str]:
    """Schema, row count and row-group limits of a parquet file (its bytes, or a local path), from its
    footer only (empty: fine)."""
    try:
        meta = pq.ParquetFile(io.BytesIO(data) if isinstance(data, bytes) else data).metadata
        schema = meta.schema.to_arrow_schema()
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...: any of them means "not readable"
        return [f"{where} is not a readable parquet file ({type(exc).__name__})"]
    missing = [f.name for f in INDEX_SCHEMA if f.name not in schema.names]
    wrong = [f.name for f in INDEX_SCHEMA if f.name in schema.names and not schema.field(f.name).type.equals(f.type)]
    if missing or wrong:
        parts = ([f"missing columns {', '.join(missing[:5])}"] if missing else []) + (
            [f"wrong types of {', '.join(wrong[:5])}"] if wrong else [])
        return [f"{where} does not have the index schema: {'; '.join(parts)}"]
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        if rg.num_rows > MAX_ROW_GROUP_ROWS or rg.total_byte_size > MAX_ROW_GROUP_BYTES:
            return [f"{where}: row group {i} has {rg.num_rows:,} rows / {rg.total_byte_size:,} bytes "
                    f"(limits {MAX_ROW_GROUP_ROWS:,} rows, {MAX_ROW_GROUP_BYTES:,} bytes)"]
    if rows is not None and meta.num_rows != rows:
        return [f"{where} has {meta.num_rows:,} rows, the manifest says {rows:,}"]
    return []


def read_part(data: bytes) -> pa.Table:
    """The rows of a part (checked with ``part_problems`` first), cast to exactly ``INDEX_SCHEMA``."""
    table = pq.read_table(io.BytesIO(data))
    return table.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
