"""``synthctl validate``: check a rendered dataset the way a careful user would.

For every shard the planner expects: a manifest (the commit marker) and a tar exist, each one
checked by ``shard_checks``. Over the dataset: no stray files, no missing shards, the quality
pass rate, the category balance against the spec (per schedule segment too), ``dataset.json``
and the index.
Problems are collected, not raised: the result is a list a person or CI can act on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from parallel_synth.dataset.index import SINGLE_FILE_MAX_SAMPLES
from parallel_synth.dataset.problems import CheckOptions, Report, read_json
from parallel_synth.dataset.shard_checks import check_shard
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.layout import DATASET_JSON, INDEX_JSONL, INDEX_PARQUET
from synth_contract.store import Store

MAX_GAP_LISTED = 10
"""A run of more missing shards than this is one problem (with its count), not one per shard."""


def load_spec(files: Store, report: Report) -> SynthDatasetSpec | None:
    """The spec recorded in ``dataset.json`` (a missing or broken file is a problem)."""
    if not files.exists(DATASET_JSON):
        report.add("missing-dataset-json", DATASET_JSON,
                   "missing: the dataset was not finished (generate writes it when all shards are committed)")
        return None
    doc = read_json(files, DATASET_JSON, report, "bad-dataset-json")
    if doc is None:
        return None
    if not isinstance(doc, dict):
        report.add("bad-dataset-json", DATASET_JSON, f"not a JSON object (a {_json_type(doc)})")
        return None
    name = doc.get("name")
    report.dataset = name if isinstance(name, str) else None
    if not isinstance(doc.get("spec"), dict):
        report.add("bad-dataset-json", DATASET_JSON, "has no spec object")
        return None
    try:
        return SynthDatasetSpec.model_validate(doc["spec"])
    except ValidationError as exc:
        from synth_contract.validation import errors_from_pydantic

        errors = errors_from_pydantic(exc, prefix="spec")
        report.add("bad-dataset-json", DATASET_JSON, "spec is not a valid SynthDataset spec: "
                   + "; ".join(str(e) for e in errors[:3]) + (f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""))
    except RecursionError:
        report.add("bad-dataset-json", DATASET_JSON, "spec is nested too deeply")
    return None


def _json_type(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


def _listed_shards(files: Store, report: Report, total: int | None) -> set[int]:
    """Flag files that do not belong in shards/ or manifests/; return the shards present (tar or manifest).

    The listing bounds the work: a ``dataset.json`` that claims 10^11 shards costs one listing,
    not 10^11 existence checks.
    """
    present: set[int] = set()
    for folder, suffix in ((layout.SHARDS, ".tar"), (layout.MANIFESTS, ".json")):
        for rel in files.list(folder):
            shard = layout.shard_of(rel, folder, suffix)
            if shard is None:
                if folder != layout.MANIFESTS or not rel.endswith(".tmp"):
                    report.add("unexpected-file", rel, "not a shard or manifest name of the data contract")
                continue
            if total is not None and shard >= total:
                report.add("unexpected-file", rel, f"shard {shard} is beyond the dataset's {total} shards")
                continue
            present.add(shard)
    return present


def _gaps(present: list[int], total: int) -> Iterable[tuple[int, int]]:
    """Runs ``[start, stop)`` of shards in ``range(total)`` missing from the sorted ``present``."""
    at = 0
    for shard in present:
        if shard > at:
            yield at, shard
        at = shard + 1
    if at < total:
        yield at, total


def _report_missing(present: list[int], total: int, report: Report) -> None:
    for start, stop in _gaps(present, total):
        if stop - start <= MAX_GAP_LISTED:
            for shard in range(start, stop):
                report.add("missing-shard", layout.shard_path(shard), "neither the tar nor its manifest exists")
        else:
            report.add("missing-shard", f"{layout.shard_path(start)}..{layout.shard_path(stop - 1)}",
                       f"{stop - start:,} shards: neither tars nor manifests exist", count=stop - start)


def check_dataset(
    files: Store,
    *,
    spec: SynthDatasetSpec | None = None,
    options: CheckOptions | None = None,
    on_shard: Callable[[int, int], None] | None = None,
) -> Report:
    """Check the dataset under ``files``; ``spec`` overrides the one in ``dataset.json``."""
    opts = options or CheckOptions()
    report = Report(root=files.uri)
    recorded = load_spec(files, report)
    spec = spec or recorded
    total = planning.shard_count(spec) if spec is not None else None
    present = _listed_shards(files, report, total)
    if total is None:
        total = max(present) + 1 if present else 0
        if total == 0:
            report.add("empty", files.uri, "no shards or manifests found: is this a dataset root "
                       "({uri}/{dataset}/v{version})?")
    report.shards_expected = total
    report.min_quality = opts.min_quality if opts.min_quality is not None else (
        spec.quality.min_score if spec is not None else None)
    report.min_pass_rate = opts.min_pass_rate if opts.min_pass_rate is not None else (
        spec.quality.min_pass_rate if spec is not None else None)
    seen_keys: set[str] | None = set() if spec is None else None
    ordered = sorted(present)
    _report_missing(ordered, total, report)
    todo = ordered
    if opts.sample is not None and opts.sample < len(ordered):
        report.sampled = True
        todo = sorted(random.Random(opts.seed).sample(ordered, opts.sample))
    for n, shard in enumerate(todo):
        check_shard(files, shard, spec, report, opts, seen_keys=seen_keys)
        if on_shard is not None:
            on_shard(n, len(todo))
    _check_totals(files, spec, report, opts, complete=report.shards_checked == total and not report.sampled)
    return report


def _check_totals(
    files: Store, spec: SynthDatasetSpec | None, report: Report, opts: CheckOptions, *, complete: bool
) -> None:
    rate = report.pass_rate
    if rate is not None and report.min_pass_rate is not None and rate < report.min_pass_rate:
        report.add("quality", files.uri, f"{rate:.1%} of samples score >= {report.min_quality}, "
                   f"below the required {report.min_pass_rate:.1%}")
    if spec is None:
        return
    report.targets = planning.category_targets(spec)
    report.segment_targets = planning.segment_targets(spec) if spec.schedule else []
    if complete:
        for seg in report.segment_targets:
            found_in = report.segments.get(seg["fromShard"], {})
            for cat, target in seg["categories"].items():
                if found_in.get(cat, 0) != target:
                    report.add("category-balance", f"schedule segment from shard {seg['fromShard']}: {cat}",
                               f"{found_in.get(cat, 0):,} samples, the segment's weights give {target:,}")
        for cat in sorted(set(report.targets) | set(report.categories)):
            found = report.categories.get(cat, 0) + report.quarantined_categories.get(cat, 0)
            target = report.targets.get(cat, 0)
            if found != target:
                report.add("category-balance", cat, f"{found:,} samples, the spec's weights give {target:,}")
    if not opts.require_index or not files.exists(DATASET_JSON):
        return
    doc = read_json(files, DATASET_JSON, report, "bad-dataset-json")
    formats = [str(f) for f in spec.output.index_formats]
    if spec.samples > SINGLE_FILE_MAX_SAMPLES:  # a large dataset's index is a folder of compacted files
        if "parquet" in formats and next(iter(files.list(layout.INDEX_COMPACTED)), None) is None:
            report.add("missing-index", layout.INDEX_COMPACTED, "empty (dataset.json is there, the index is not)")
        formats = []
    for fmt, rel in (("parquet", INDEX_PARQUET), ("jsonl", INDEX_JSONL)):
        if fmt in formats and not files.exists(rel):
            report.add("missing-index", rel, "missing (dataset.json is there, the index is not)")
    if "jsonl" in formats and files.exists(INDEX_JSONL):
        rows = 0
        with files.open(INDEX_JSONL) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                rows += chunk.count(b"\n")
        if rows != report.samples:
            report.add("index-rows", INDEX_JSONL, f"{rows:,} rows for {report.samples:,} samples")
    if isinstance(doc, dict):
        samples = doc.get("samples")
        completed = samples.get("completed") if isinstance(samples, dict) else None
        if completed != report.samples:
            report.add("bad-dataset-json", DATASET_JSON,
                       f"samples.completed is {completed}, the shards hold {report.samples:,}")
