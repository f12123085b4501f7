"""The dataset index and summary, built from the shards' manifests and index parts.

Each committed shard has ``index/parts/{shard:08d}.parquet`` (written by the worker before the
manifest, which names it), so the index step reads metadata only (about a kilobyte a sample),
never an image: ``index/metadata.parquet`` (and ``metadata.jsonl``) for a dataset of up to
``SINGLE_FILE_MAX_SAMPLES`` samples, else ``index/compacted/`` files of whole shards.
``dataset.json`` holds the counts, categories, quality, coverage and the spec. Shards are
taken one at a time and each shard's rows are one parquet row group, so memory stays bounded
by one shard's metadata whatever the dataset's size. A shard committed before parts existed is
read from its tar (``shard_rows``, the old path). Files are built in a local temporary folder
and uploaded at the end (the store's writes are atomic), so a reader never sees half an index.
``live_summary`` gives the same figures over the shards committed so far, while the run goes on.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from parallel_synth.dataset.coverage import Coverage
from parallel_synth.dataset.credits import Credits
from parallel_synth.dataset.files import committed_shards
from parallel_synth.dataset.records import INDEX_SCHEMA, index_row, png_size
from parallel_synth.dataset.tars import Sample, ScanResult, scan_shard
from synth_contract import index_rows, layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.classes import spec_vocabulary
from synth_contract.layout import DATASET_JSON, INDEX_JSONL, INDEX_PARQUET, INDEX_QUARANTINE
from synth_contract.store import Store
from synth_contract.times import format_time


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
        meta = row.get("metadata")  # the sample's JSON, as text (a row) or already parsed
        self.credits.add_sample(json.loads(meta) if isinstance(meta, str) else meta if isinstance(meta, dict) else {})
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
        "createdAt": format_time(now),
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
    """The index rows of one shard, read from its tar as a stream (datasets without index parts)."""
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


SINGLE_FILE_MAX_SAMPLES = 1_000_000
"""Up to this many samples the index is one ``index/metadata.parquet`` (and ``metadata.jsonl``);
above it, ``index/compacted/`` holds files of whole shards of about ``COMPACT_SAMPLES`` rows each.

At ~0.6 KB a row (zstd, the sample JSON included) a million rows is a ~0.6 GB file: still one
download and one ``pd.read_parquet`` for a user, and rewritten in seconds by the index step.
Past that a single file only costs: the index step rewrites it whole from one process, S3
takes it in one multipart upload that cannot be resumed per row group, and readers (DuckDB,
Spark, HF ``datasets``) parallelise over files, not inside one. A folder of ~1M-row files
keeps each file the size such readers are tuned for and lets a rebuild redo one range only."""
COMPACT_SAMPLES = 1_000_000
"""Rows of one compacted index file (whole shards: ``max(1, COMPACT_SAMPLES // shardSize)`` shards each)."""


class IndexProblem(ValueError):
    """The index cannot be built as asked (a missing, truncated or mismatched part): exit 1, naming the shard."""


@dataclass
class ReadCounter:
    """Bytes the index step read from the store, by kind (the figure the benchmark prints)."""

    manifests: int = 0
    parts: int = 0
    tars: int = 0
    quarantine: int = 0

    @property
    def total(self) -> int:
        return self.manifests + self.parts + self.tars + self.quarantine


@dataclass
class ShardIndex:
    """One committed shard's contribution to the index."""

    shard: int
    manifest: dict[str, Any]
    table: pa.Table
    source: str
    """``part`` (its index part) or ``tar`` (scanned: no part, or ``--rebuild-from-shards``)."""
    held: list[dict[str, Any]] = field(default_factory=list)


def _read_manifest(files: Store, shard: int, counter: ReadCounter) -> dict[str, Any]:
    raw = files.read_bytes(layout.manifest_path(shard))
    if raw is None:
        raise IndexProblem(f"shard {shard}: {layout.manifest_path(shard)} is missing (the shard is not committed)")
    counter.manifests += len(raw)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise IndexProblem(f"shard {shard}: {layout.manifest_path(shard)} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise IndexProblem(f"shard {shard}: {layout.manifest_path(shard)} is not a JSON object")
    return doc


def shard_index(files: Store, shard: int, manifest: dict[str, Any], *, counter: ReadCounter,
                rebuild_from_shards: bool = False) -> ShardIndex:
    """The rows of one committed shard: from its index part, else (no part, or a bad one with
    ``rebuild_from_shards``) from its tar. A bad part without the flag is an ``IndexProblem``."""
    entry = manifest.get("indexPart")
    if entry is not None:
        data = files.read_bytes(layout.index_part_path(shard))
        counter.parts += len(data or b"")
        problems = index_rows.part_problems(data, entry, shard=shard)
        if not problems and data is not None:
            return ShardIndex(shard, manifest, index_rows.read_part(data), "part")
        if not rebuild_from_shards:
            raise IndexProblem(problems[0] + " (run synthctl index --rebuild-from-shards to read its tar instead)")
    rows, result = shard_rows(files, shard)
    counter.tars += result.bytes
    return ShardIndex(shard, manifest, pa.Table.from_pylist(rows, schema=INDEX_SCHEMA), "tar")


def iter_shards(spec: SynthDatasetSpec, files: Store, *, counter: ReadCounter, rebuild_from_shards: bool = False,
                committed_only: bool = False) -> Iterator[ShardIndex]:
    """Every shard's index in shard order (``committed_only``: skip shards without a manifest, for a live view)."""
    shards: Iterable[int] = (committed_shards(files) if committed_only else range(planning.shard_count(spec)))
    for shard in shards:
        manifest = _read_manifest(files, shard, counter)
        item = shard_index(files, shard, manifest, counter=counter, rebuild_from_shards=rebuild_from_shards)
        if (manifest.get("quarantined") or {}).get("samples"):
            raw = files.read_bytes(layout.quarantine_list_path(shard))
            if raw is None:
                raise IndexProblem(f"shard {shard}: {layout.quarantine_list_path(shard)} is missing")
            counter.quarantine += len(raw)
            item.held = [e for e in (json.loads(raw).get("entries") or []) if isinstance(e, dict)]
        yield item


@dataclass
class Tally:
    """Summary and coverage of the shards seen so far (what ``dataset.json`` reports)."""

    spec: SynthDatasetSpec
    summary: Summary = field(default_factory=Summary)
    coverage: Coverage = field(default_factory=Coverage)
    sources: dict[str, int] = field(default_factory=dict)
    fenced: dict[bool, int] = field(default_factory=dict)
    committed: int = 0

    def add(self, item: ShardIndex) -> None:
        summary, spec = self.summary, self.spec
        self.committed += 1
        self.sources[item.source] = self.sources.get(item.source, 0) + 1
        commit = item.manifest.get("commit")
        if isinstance(commit, dict) and isinstance(commit.get("fenced"), bool):
            self.fenced[commit["fenced"]] = self.fenced.get(commit["fenced"], 0) + 1
        summary.add_manifest(item.manifest)
        summary.add_quarantine(item.held)
        seg = summary.segments.setdefault(planning.segment_of_shard(spec, item.shard).from_shard, {})
        cols = item.table.select(["category", "score", "metadata"]).to_pydict()
        for cat, score, text in zip(cols["category"], cols["score"], cols["metadata"], strict=True):
            meta = json.loads(text)
            summary.add_row({"category": cat, "score": score, "metadata": meta}, min_score=spec.quality.min_score)
            seg[cat] = seg.get(cat, 0) + 1
            self.coverage.add(meta)
            derived = meta.get("derived")
            if isinstance(derived, dict):
                kind = "copied" if derived.get("copied") else "rerendered"
                summary.derived[kind] = summary.derived.get(kind, 0) + 1

    def doc(self, dataset: str, *, files: list[str], now: datetime, counter: ReadCounter,
            total_shards: int | None = None) -> dict[str, Any]:
        spec, summary = self.spec, self.summary
        doc = dataset_summary(spec, dataset, summary, files=files, now=now)
        if total_shards is not None:
            doc["shards"]["completed"] = self.committed
        doc["coverage"] = self.coverage.result()
        if spec.derived_from is not None:
            doc["derivedFrom"] = {"version": spec.derived_from.version,
                                  "belowScore": spec.derived_from.rerender.below_score,
                                  "copied": summary.derived.get("copied", 0),
                                  "rerendered": summary.derived.get("rerendered", 0)}
        doc["index"] = {"source": {k: self.sources[k] for k in sorted(self.sources)},
                        "bytesRead": counter.total,
                        "bytesReadPerSample": round(counter.total / summary.samples, 1) if summary.samples else None,
                        "parts": layout.INDEX_PARTS + "/{shard:08d}.parquet"}
        doc["commits"] = {"fenced": self.fenced.get(True, 0), "unfenced": self.fenced.get(False, 0)}
        if self.fenced.get(False):
            doc["commits"]["warning"] = (
                f"{self.fenced[False]} shards were committed on a store that ignores conditional writes "
                "(If-None-Match): two writers of the same shard in the same instant were not excluded")
        return doc


def live_summary(spec: SynthDatasetSpec, dataset: str, files: Store, *, now: datetime) -> dict[str, Any]:
    """``dataset.json``'s figures over the shards committed so far, from manifests and parts (writes nothing)."""
    counter = ReadCounter()
    tally = Tally(spec, coverage=Coverage(seed=spec.seed))
    for item in iter_shards(spec, files, counter=counter, committed_only=True, rebuild_from_shards=True):
        tally.add(item)
    doc = tally.doc(dataset, files=[], now=now, counter=counter, total_shards=planning.shard_count(spec))
    doc["live"] = True
    return doc


class _IndexFiles:
    """The index files being written: one metadata.parquet (+jsonl) or compacted files of whole shards."""

    def __init__(self, spec: SynthDatasetSpec, tmp: Path, formats: list[str]) -> None:
        self.tmp = tmp
        self.single = spec.samples <= SINGLE_FILE_MAX_SAMPLES
        self.per_file = max(1, COMPACT_SAMPLES // spec.shard_size)
        self.parquet = "parquet" in formats
        self._pq: pq.ParquetWriter | None = None
        self._range: tuple[int, int] | None = None
        self.done: list[tuple[str, Path]] = []
        self.jsonl = (tmp / "metadata.jsonl").open("w") if "jsonl" in formats and self.single else None

    def add(self, item: ShardIndex) -> None:
        if self.parquet:
            if not self.single:
                first = item.shard - item.shard % self.per_file
                if self._range is None or self._range[0] != first:
                    self._close()
                    self._range = (first, item.shard)
                self._range = (self._range[0], item.shard)
            if self._pq is None:
                name = "metadata.parquet" if self.single else f"compacted-{item.shard:08d}.parquet"
                self._pq = pq.ParquetWriter(self.tmp / name, INDEX_SCHEMA, compression="zstd")
            if item.table.num_rows:
                self._pq.write_table(item.table)
        if self.jsonl is not None:  # the sample JSON spliced in as it is stored (no parse and dump again)
            texts = item.table.column("metadata").to_pylist()
            rest = item.table.drop_columns(["metadata"]).to_pylist()
            for row, text in zip(rest, texts, strict=True):
                self.jsonl.write(json.dumps(row)[:-1] + ', "metadata": ' + text + "}\n")

    def _close(self) -> None:
        if self._pq is None:
            return
        self._pq.close()
        if self.single:
            self.done.append((INDEX_PARQUET, self.tmp / "metadata.parquet"))
        else:
            assert self._range is not None
            self.done.append((layout.compacted_path(*self._range),
                              self.tmp / f"compacted-{self._range[0]:08d}.parquet"))
        self._pq = None

    def close(self) -> None:
        self._close()
        if self.jsonl is not None:
            self.jsonl.close()
            self.done.append((INDEX_JSONL, self.tmp / "metadata.jsonl"))
            self.jsonl = None


def write_index(
    spec: SynthDatasetSpec,
    dataset: str,
    files: Store,
    *,
    now: datetime,
    on_shard: Callable[[int], None] | None = None,
    rebuild_from_shards: bool = False,
    counter: ReadCounter | None = None,
) -> dict[str, Any]:
    """Write the index files and ``dataset.json`` from manifests and index parts; returns the summary.

    A shard whose manifest names no index part (written before parts existed) is read from its
    tar. A part that is missing, truncated or does not match its manifest is an ``IndexProblem``
    (nothing written) unless ``rebuild_from_shards``, which reads that shard's tar only.
    """
    formats = [str(f) for f in spec.output.index_formats]
    counter = counter or ReadCounter()
    tally = Tally(spec, coverage=Coverage(seed=spec.seed))
    written: list[str] = []
    with tempfile.TemporaryDirectory(prefix="synth-index-") as tmp:
        out = _IndexFiles(spec, Path(tmp), formats)
        q_path = Path(tmp) / "quarantine.jsonl"
        try:
            with q_path.open("w") as held_out:
                for item in iter_shards(spec, files, counter=counter, rebuild_from_shards=rebuild_from_shards):
                    tally.add(item)
                    for e in item.held:
                        held_out.write(json.dumps({"shard": item.shard, **e}) + "\n")
                    out.add(item)
                    if on_shard is not None:
                        on_shard(item.shard)
        finally:
            out.close()
        if tally.summary.quarantined:
            files.upload_file(INDEX_QUARANTINE, q_path)
            written.append(INDEX_QUARANTINE)
        for rel, local in out.done:
            files.upload_file(rel, local)
        if out.single:
            written += [rel for rel, _ in out.done]
        elif out.done:
            written.append(layout.INDEX_COMPACTED + "/")
    doc = tally.doc(dataset, files=written, now=now, counter=counter)
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


def index_files(files: Store, *, source: str = "auto") -> tuple[str, list[str]]:
    """What a reader of the index should read now: (``index``|``parts``, relative paths).

    ``index``: a finished dataset's ``metadata.parquet`` or ``compacted/`` files. ``parts``: the
    index parts of the shards committed so far (a part whose manifest is not there yet, a
    shard being committed this instant, is left out). ``auto`` takes the finished index when
    ``dataset.json`` says it is written, else the parts.
    """
    if source in ("auto", "index") and files.exists(DATASET_JSON):
        if files.exists(INDEX_PARQUET):
            return "index", [INDEX_PARQUET]
        compacted = sorted(files.list(layout.INDEX_COMPACTED))
        if compacted:
            return "index", compacted
    if source == "index":
        return "index", []
    committed = set(committed_shards(files))
    parts = [rel for rel in files.list(layout.INDEX_PARTS)
             if (n := layout.shard_of(rel, layout.INDEX_PARTS, ".parquet")) is not None and n in committed]
    return "parts", parts


def live_doc(files: Store, *, now: datetime) -> dict[str, Any] | None:
    """A local run still going (``local-run.json`` there, no ``dataset.json`` yet): ``dataset.json``'s
    figures over the shards committed so far (``live_summary``); None when neither file is there.

    A ``local-run.json`` that cannot be used is an ``IndexProblem`` naming it.
    """
    if files.exists(DATASET_JSON) or not files.exists(layout.LOCAL_RUN_JSON):
        return None
    size = files.size(layout.LOCAL_RUN_JSON) or 0
    if size > 16 * 1024 * 1024:
        raise IndexProblem(f"{layout.LOCAL_RUN_JSON}: {size:,} bytes, more than a spec can be")
    try:
        spec = SynthDatasetSpec.model_validate(json.loads(files.read_bytes(layout.LOCAL_RUN_JSON) or b"")["spec"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise IndexProblem(f"{layout.LOCAL_RUN_JSON}: not a run's spec ({type(exc).__name__})") from None
    name = files.uri.rstrip("/").split("/")[-2] if files.uri.count("/") >= 2 else "dataset"
    return live_summary(spec, name, files, now=now)


def part_columns(files: Store, columns: list[str]) -> pa.Table:
    """``columns`` of the committed shards' index parts (what a live report reads instead of the index)."""
    _, rels = index_files(files, source="parts")
    tables = []
    for rel in rels:
        shard = layout.shard_of(rel, layout.INDEX_PARTS, ".parquet")
        data = files.read_bytes(rel)
        problems = index_rows.footer_problems(data or b"", rows=None, where=f"shard {shard}: index part {rel}")
        if data is None or problems:
            raise IndexProblem(problems[0] if problems else f"{rel} vanished while it was read")
        tables.append(index_rows.read_part(data).select(columns))
    if not tables:
        return pa.Table.from_pylist([], schema=pa.schema([INDEX_SCHEMA.field(c) for c in columns]))
    return pa.concat_tables(tables)
