"""The dataset index and summary, written once every shard is committed.

``index/metadata.parquet`` and ``index/metadata.jsonl`` hold one row per sample, built from
the shards' ``{key}.json`` members; ``dataset.json`` holds the counts, categories, quality
and the spec. Shards are read one at a time as streams and each shard's rows are written as
one parquet row group before the next shard is opened, so memory stays bounded by one
shard's metadata whatever the dataset's size. Files are built in a local temporary folder and
uploaded at the end (the store's writes are atomic), so a reader never sees half an index.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from parallel_synth.dataset.coverage import Coverage
from parallel_synth.dataset.credits import Credits
from parallel_synth.dataset.files import read_json
from parallel_synth.dataset.records import INDEX_SCHEMA, index_row, png_size
from parallel_synth.dataset.tars import Sample, ScanResult, scan_shard
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.classes import spec_vocabulary
from synth_contract.layout import DATASET_JSON, INDEX_JSONL, INDEX_PARQUET, INDEX_QUARANTINE
from synth_contract.store import Store


@dataclass
class Summary:
    """Running totals over the shards, O(categories) in size."""

    samples: int = 0
    bytes: int = 0
    score_sum: float = 0.0
    score_min: float | None = None
    scored: int = 0
    passed: int = 0
    rerenders: int = 0
    render_seconds: float = 0.0
    categories: dict[str, int] = field(default_factory=dict)
    engines: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    segments: dict[int, dict[str, int]] = field(default_factory=dict)
    """Committed samples per category, per schedule segment (by its fromShard)."""
    derived: dict[str, int] = field(default_factory=dict)
    """With spec.derivedFrom: kept samples copied from the earlier version, and rendered again."""
    quarantined: int = 0
    quarantined_categories: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    credits: Credits = field(default_factory=Credits)
    classes: list[dict[str, Any]] | None = None
    """The dataset's class vocabulary ([{id, name}]) as the renderer wrote it into the shard manifests."""

    def add_row(self, row: dict[str, Any], *, min_score: float) -> None:
        self.samples += 1
        self.credits.add_sample(json.loads(row["metadata"]) if isinstance(row.get("metadata"), str) else {})
        cat = row["category"]
        self.categories[cat] = self.categories.get(cat, 0) + 1
        score = row["score"]
        if score is not None:
            self.scored += 1
            self.score_sum += score
            self.score_min = score if self.score_min is None else min(self.score_min, score)
            self.passed += score >= min_score

    def add_manifest(self, manifest: dict[str, Any]) -> None:
        self.bytes += int(manifest.get("bytes") or 0)
        quality = manifest.get("quality") or {}
        self.rerenders += int(quality.get("rerenders") or 0)
        self.render_seconds += float((manifest.get("timings") or {}).get("renderSeconds") or 0.0)
        held = manifest.get("quarantined")
        if isinstance(held, dict) and isinstance(held.get("samples"), int):
            self.quarantined += held["samples"]
            for cat, n in (held.get("categories") or {}).items():
                self.quarantined_categories[cat] = self.quarantined_categories.get(cat, 0) + int(n)
        for key, bag in (("engine", self.engines), ("device", self.devices)):
            if manifest.get(key):
                bag.add(str(manifest[key]))
        if self.classes is None:
            self.classes = manifest_classes(manifest)

    def add_quarantine(self, entries: list[dict[str, Any]]) -> None:
        """Count the failure reasons of quarantined samples (by their kind: 'noise', 'mask', ...)."""
        for e in entries:
            for reason in e.get("reasons") or ["score below minScore"]:
                kind = str(reason).split(":", 1)[0]
                self.quarantine_reasons[kind] = self.quarantine_reasons.get(kind, 0) + 1


def dataset_summary(
    spec: SynthDatasetSpec, dataset: str, summary: Summary, *, files: list[str], now: datetime
) -> dict[str, Any]:
    """The contents of ``dataset.json`` (pure)."""
    targets = planning.category_targets(spec)
    return {
        "name": dataset,
        "version": spec.version,
        "createdAt": now.astimezone(UTC).isoformat(timespec="seconds"),
        "samples": {"target": spec.samples, "completed": summary.samples},
        "shards": {"total": planning.shard_count(spec), "completed": planning.shard_count(spec)},
        "categories": {c: {"target": t, "completed": summary.categories.get(c, 0),
                           "quarantined": summary.quarantined_categories.get(c, 0)} for c, t in targets.items()},
        "quality": {
            "minScore": spec.quality.min_score,
            "mean": summary.score_sum / summary.scored if summary.scored else None,
            "min": summary.score_min,
            "passRate": (summary.passed / (summary.scored + summary.quarantined)
                         if summary.scored + summary.quarantined else None),
            "rerenders": summary.rerenders,
        },
        "segments": [
            {**seg, "categories": {c: {"target": t, "completed": summary.segments.get(seg["fromShard"], {}).get(c, 0)}
                                   for c, t in seg["categories"].items()}}
            for seg in planning.segment_targets(spec)
        ],
        "quarantine": {
            "samples": summary.quarantined,
            "categories": dict(sorted(summary.quarantined_categories.items())),
            "reasons": dict(sorted(summary.quarantine_reasons.items())),
            "layout": layout.QUARANTINE_TEMPLATES,
        },
        "bytes": summary.bytes,
        "bytesPerSample": summary.bytes / summary.samples if summary.samples else None,
        "renderSeconds": summary.render_seconds,
        "engines": sorted(summary.engines),
        "devices": sorted(summary.devices),
        "passes": list(spec.render.passes),
        "classes": summary.classes if summary.classes is not None else spec_vocabulary(spec),
        **summary.credits.doc(),
        "layout": {
            "shards": layout.SHARD_TEMPLATE,
            "manifests": layout.MANIFEST_TEMPLATE,
            "index": files,
        },
        "spec": spec.wire(),
    }


def shard_rows(files: Store, shard: int) -> tuple[list[dict[str, Any]], ScanResult]:
    """The index rows of one shard (read as a stream)."""
    rows: list[dict[str, Any]] = []
    result = ScanResult()
    with files.open(layout.shard_path(shard)) as stream:
        for item in scan_shard(stream, result, load=frozenset({"json"}), heads=frozenset({"png"})):
            if not isinstance(item, Sample) or "json" not in item.data:
                continue
            meta = json.loads(item.data["json"])
            rows.append(
                index_row(
                    meta, key=item.key, shard=shard, members=sorted(item.sizes),
                    size=png_size(item.data.get("png", b"")),
                )
            )
    if result.error:
        raise ValueError(f"{layout.shard_path(shard)}: {result.error}")
    return rows, result


def write_index(
    spec: SynthDatasetSpec,
    dataset: str,
    files: Store,
    *,
    now: datetime,
    on_shard: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the index files and ``dataset.json``; returns the summary document."""
    formats = [str(f) for f in spec.output.index_formats]
    summary = Summary()
    coverage = Coverage(seed=spec.seed)
    written: list[str] = []
    with tempfile.TemporaryDirectory(prefix="synth-index-") as tmp:
        pq_path, jl_path = Path(tmp) / "metadata.parquet", Path(tmp) / "metadata.jsonl"
        writer = pq.ParquetWriter(pq_path, INDEX_SCHEMA, compression="zstd") if "parquet" in formats else None
        jsonl = jl_path.open("w") if "jsonl" in formats else None
        q_path = Path(tmp) / "quarantine.jsonl"
        held_out = q_path.open("w")
        try:
            for shard in range(planning.shard_count(spec)):
                manifest = read_json(files, layout.manifest_path(shard))
                summary.add_manifest(manifest)
                if (manifest.get("quarantined") or {}).get("samples"):
                    held = read_json(files, layout.quarantine_list_path(shard))
                    summary.add_quarantine(held.get("entries") or [])
                    for e in held.get("entries") or []:
                        held_out.write(json.dumps({"shard": shard, **e}) + "\n")
                rows, _ = shard_rows(files, shard)
                seg = summary.segments.setdefault(planning.segment_of_shard(spec, shard).from_shard, {})
                for row in rows:
                    summary.add_row(row, min_score=spec.quality.min_score)
                    seg[row["category"]] = seg.get(row["category"], 0) + 1
                    meta = json.loads(row["metadata"])
                    coverage.add(meta)
                    derived = meta.get("derived")
                    if isinstance(derived, dict):
                        kind = "copied" if derived.get("copied") else "rerendered"
                        summary.derived[kind] = summary.derived.get(kind, 0) + 1
                if writer is not None and rows:
                    writer.write_table(pa.Table.from_pylist(rows, schema=INDEX_SCHEMA))
                if jsonl is not None:
                    for row in rows:
                        jsonl.write(json.dumps({**row, "metadata": json.loads(row["metadata"])}) + "\n")
                if on_shard is not None:
                    on_shard(shard)
        finally:
            if writer is not None:
                writer.close()
            if jsonl is not None:
                jsonl.close()
            held_out.close()
        if summary.quarantined:
            files.upload_file(INDEX_QUARANTINE, q_path)
            written.append(INDEX_QUARANTINE)
        if writer is not None:
            files.upload_file(INDEX_PARQUET, pq_path)
            written.append(INDEX_PARQUET)
        if jsonl is not None:
            files.upload_file(INDEX_JSONL, jl_path)
            written.append(INDEX_JSONL)
    doc = dataset_summary(spec, dataset, summary, files=written, now=now)
    doc["coverage"] = coverage.result()
    if spec.derived_from is not None:
        doc["derivedFrom"] = {"version": spec.derived_from.version,
                              "belowScore": spec.derived_from.rerender.below_score,
                              "copied": summary.derived.get("copied", 0),
                              "rerendered": summary.derived.get("rerendered", 0)}
    files.write_bytes(DATASET_JSON, (json.dumps(doc, indent=2) + "\n").encode())
    return doc


def manifest_classes(manifest: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A shard manifest's ``classes`` ([{id, name}]: the built-in classes and those of the asset
    libraries), or None when it has none (written before manifests carried them)."""
    raw = manifest.get("classes")
    if not isinstance(raw, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), int) and isinstance(c.get("name"), str) for c in raw):
        return None
    return [{"id": c["id"], "name": c["name"]} for c in raw]
