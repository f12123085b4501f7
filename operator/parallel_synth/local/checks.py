"""``synthctl validate``: check a rendered dataset the way a careful user would.

For every shard the planner expects: a manifest (the commit marker) and a tar exist; the
tar's sha256 and size match the manifest; the tar is read as a stream with ``tarfile``
(never extracted) and every member is safe (no absolute paths, ``..``, links, devices or
huge members); every sample has its metadata and one file per pass; the sample count and
category counts match the manifest and the planner; keys are unique across the dataset
(each key must lie in its own shard's index range, so uniqueness is checked in O(shard)
memory); the metadata has the fields of the data contract. Over the dataset: the quality
pass rate, the category balance against the spec, ``dataset.json`` and the index.
Problems are collected, not raised: the result is a list a person or CI can act on.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from parallel_synth.local.images import MAX_PIXELS, PASS_FORMATS, sample_image_problems
from parallel_synth.local.index import DATASET_JSON, INDEX_JSONL, INDEX_PARQUET
from parallel_synth.local.records import PASS_EXT, metadata_problems, png_size, quality_score
from parallel_synth.local.store import DatasetFiles
from parallel_synth.local.tars import MAX_MEMBER_BYTES, Hostile, Sample, ScanResult, scan_shard
from synth_contract import multiview, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.multiview import sample_members
from synth_contract.passes import OPTIONAL_MEMBERS

MAX_LISTED_PROBLEMS = 1000
"""Problems kept in the report; the count covers all of them."""

MAX_JSON_BYTES = 64 * 1024 * 1024
"""``dataset.json`` or a shard manifest larger than this is a problem, not read."""

MAX_GAP_LISTED = 10
"""A run of more missing shards than this is one problem (with its count), not one per shard."""

MANIFEST_FIELDS = ("shard", "samples", "sha256", "bytes")
_SHARD_NAME = re.compile(r"^(shards/(\d{8})\.tar|manifests/(\d{8})\.json)$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset: a short code, where, and what."""

    code: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.where}: {self.message}"


@dataclass
class CheckOptions:
    """How strict to be."""

    min_quality: float | None = None
    """Score a sample needs to pass; default: the spec's ``quality.minScore``."""
    min_pass_rate: float | None = None
    """Required fraction of passing samples; default: the spec's ``quality.minPassRate``."""
    max_member_bytes: int = MAX_MEMBER_BYTES
    require_index: bool = True
    sample: int | None = None
    """Check only this many shards, picked at random among those present (``None``: all)."""
    seed: int | None = None
    """Seed of that random pick (``None``: a different pick each run)."""
    max_pixels: int = MAX_PIXELS
    """Images larger than this (width x height) are problems, judged from their header alone."""
    decode_images: bool = True


@dataclass
class Report:
    """What ``validate`` found; ``to_json`` is the CI report."""

    root: str
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    shards_expected: int = 0
    shards_checked: int = 0
    samples: int = 0
    bytes: int = 0
    scored: int = 0
    passed: int = 0
    min_quality: float | None = None
    min_pass_rate: float | None = None
    categories: dict[str, int] = field(default_factory=dict)
    targets: dict[str, int] = field(default_factory=dict)
    dataset: str | None = None
    quarantined: int = 0
    """Samples held back by the quality gate (under ``quarantine/``, not in the shards)."""
    quarantined_categories: dict[str, int] = field(default_factory=dict)
    segments: dict[int, dict[str, int]] = field(default_factory=dict)
    """Samples found (shards plus quarantine) per category, per schedule segment (by its fromShard)."""
    segment_targets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.scored if self.scored else None

    sampled: bool = False

    def add(self, code: str, where: str, message: str, *, count: int = 1) -> None:
        """One problem (``count`` > 1: one line standing for that many of the same kind)."""
        self.problem_count += count
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(Problem(code, where, message))

    def to_json(self) -> dict[str, Any]:
        total = sum(self.categories.values()) or 1
        target_total = sum(self.targets.values()) or 1
        names = list(self.targets) or sorted(self.categories)
        return {
            "dataset": self.dataset,
            "root": self.root,
            "ok": self.ok,
            "problemCount": self.problem_count,
            "problems": [asdict(p) for p in self.problems],
            "truncated": self.problem_count > len(self.problems),
            "shards": {"expected": self.shards_expected, "checked": self.shards_checked, "sampled": self.sampled},
            "samples": self.samples,
            "quarantined": self.quarantined,
            "segments": [{"fromShard": seg["fromShard"], "toShard": seg["toShard"],
                          "categories": {c: {"found": self.segments.get(seg["fromShard"], {}).get(c, 0), "target": t}
                                         for c, t in seg["categories"].items()}}
                         for seg in self.segment_targets],
            "bytes": self.bytes,
            "quality": {
                "minScore": self.min_quality,
                "minPassRate": self.min_pass_rate,
                "passRate": self.pass_rate,
                "scored": self.scored,
            },
            "categories": {
                c: {
                    "found": self.categories.get(c, 0),
                    "target": self.targets.get(c),
                    "share": self.categories.get(c, 0) / total,
                    "targetShare": self.targets[c] / target_total if c in self.targets else None,
                }
                for c in names
            },
        }


def _read_json(files: DatasetFiles, rel: str, report: Report, code: str) -> Any:
    try:
        size = files.size(rel)
        if size is not None and size > MAX_JSON_BYTES:
            report.add(code, rel, f"{size:,} bytes, more than the {MAX_JSON_BYTES:,} a JSON file here may have")
            return None
        return json.loads(files.read_bytes(rel))
    except RecursionError:
        report.add(code, rel, "not valid JSON: nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:
        report.add(code, rel, f"not valid JSON: {_short(exc)}")
    except OSError as exc:
        report.add(code, rel, f"cannot be read: {_short(exc)}")
    return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def load_spec(files: DatasetFiles, report: Report) -> SynthDatasetSpec | None:
    """The spec recorded in ``dataset.json`` (a missing or broken file is a problem)."""
    if not files.exists(DATASET_JSON):
        report.add("missing-dataset-json", DATASET_JSON,
                   "missing: the dataset was not finished (generate writes it when all shards are committed)")
        return None
    doc = _read_json(files, DATASET_JSON, report, "bad-dataset-json")
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


def _listed_shards(files: DatasetFiles, report: Report, total: int | None) -> set[int]:
    """Flag files that do not belong in shards/ or manifests/; return the shards present (tar or manifest).

    The listing bounds the work: a ``dataset.json`` that claims 10^11 shards costs one listing,
    not 10^11 existence checks.
    """
    present: set[int] = set()
    for prefix in ("shards", "manifests"):
        for rel in files.list(prefix):
            m = _SHARD_NAME.match(rel)
            if m is None:
                if not rel.startswith("manifests/") or not rel.endswith(".tmp"):
                    report.add("unexpected-file", rel, "not a shard or manifest name of the data contract")
                continue
            shard = int(m.group(2) or m.group(3))
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
                report.add("missing-shard", planning.shard_path(shard), "neither the tar nor its manifest exists")
        else:
            report.add("missing-shard", f"{planning.shard_path(start)}..{planning.shard_path(stop - 1)}",
                       f"{stop - start:,} shards: neither tars nor manifests exist", count=stop - start)


def check_manifest(manifest: Any, shard: int, spec: SynthDatasetSpec | None) -> list[str]:
    """What is wrong with a shard manifest by itself (pure)."""
    if not isinstance(manifest, dict):
        return ["manifest is not a JSON object"]
    out = [f"missing field {f!r}" for f in MANIFEST_FIELDS if f not in manifest]
    if "shard" in manifest and manifest["shard"] != shard:
        out.append(f"says shard {manifest['shard']}, stored as shard {shard}")
    if spec is not None and "samples" in manifest:
        expected = len(planning.shard_range(spec, shard))
        held = quarantined_count(manifest)
        if isinstance(manifest["samples"], int) and manifest["samples"] + held != expected:
            extra = f" (+{held} quarantined)" if held else ""
            out.append(f"says {manifest['samples']} samples{extra}, the planner expects {expected}")
    return out


def quarantined_count(manifest: dict[str, Any]) -> int:
    """Samples of a shard held back by the quality gate (``quarantine/``), per its manifest."""
    q = manifest.get("quarantined")
    n = q.get("samples") if isinstance(q, dict) else 0
    return n if isinstance(n, int) and n >= 0 else 0


def check_shard(
    files: DatasetFiles, shard: int, spec: SynthDatasetSpec | None, report: Report, opts: CheckOptions,
    *, seen_keys: set[str] | None,
) -> None:
    """Check one committed-or-not shard; adds problems and counts to ``report``."""
    tar_rel, man_rel = planning.shard_path(shard), planning.manifest_path(shard)
    has_manifest, tar_size = files.exists(man_rel), files.size(tar_rel)
    if not has_manifest and tar_size is None:
        report.add("missing-shard", tar_rel, "neither the tar nor its manifest exists")
        return
    if not has_manifest:
        report.add("missing-manifest", man_rel, "the tar exists but was never committed (no manifest)")
        return
    manifest = _read_json(files, man_rel, report, "bad-manifest")
    if manifest is None:
        return
    for msg in check_manifest(manifest, shard, spec):
        report.add("bad-manifest", man_rel, msg)
    if tar_size is None:
        report.add("missing-shard", tar_rel, "the manifest exists but the tar does not")
        return
    report.shards_checked += 1
    expected_range = planning.shard_range(spec, shard) if spec is not None else None
    passes = [str(p) for p in spec.render.passes] if spec is not None else ["rgb"]
    needed = (sample_members(spec) - OPTIONAL_MEMBERS) if spec is not None else {"json", *(PASS_EXT[p] for p in passes)}
    keys: set[str] = set()
    categories: dict[str, int] = {}
    result = ScanResult()
    load = frozenset({"json", *PASS_FORMATS}) if opts.decode_images else frozenset({"json"})
    if opts.decode_images and spec is not None:  # multi-view: every view's images too
        load |= {m for m in multiview.any_view_members(spec) if m.split(".", 1)[1] in PASS_FORMATS}
    try:
        with files.open(tar_rel) as stream:
            for item in scan_shard(stream, result, load=load, heads=frozenset({"png"}),
                                   max_member_bytes=opts.max_member_bytes):
                if isinstance(item, Hostile):
                    if item.reason == "repeated member name":
                        report.add("duplicate-key", f"{tar_rel}:{item.name}", "the member appears twice")
                    else:
                        report.add("hostile-member", f"{tar_rel}:{item.name}", item.reason)
                    continue
                _check_sample(item, shard, spec, expected_range, needed, keys, categories, report, opts,
                              seen_keys=seen_keys)
    except OSError as exc:  # a directory where the tar should be, permissions, a vanished file
        report.add("unreadable-shard", tar_rel, f"cannot be read: {_short(exc)}")
        return
    if result.error:
        report.add("truncated-tar", tar_rel, f"unreadable after {len(keys)} samples: {result.error}")
    if isinstance(manifest, dict):
        if manifest.get("bytes") is not None and manifest["bytes"] != result.bytes:
            report.add("size-mismatch", tar_rel, f"{result.bytes:,} bytes, manifest says {manifest['bytes']!r}")
        if manifest.get("sha256") is not None and manifest["sha256"] != result.sha256:
            report.add("sha256-mismatch", tar_rel, f"sha256 {result.sha256[:16]}..., manifest says "
                       f"{str(manifest['sha256'])[:16]}...")
        if isinstance(manifest.get("samples"), int) and manifest["samples"] != len(keys):
            report.add("sample-count", tar_rel, f"{len(keys)} samples in the tar, manifest says {manifest['samples']}")
        man_cats = manifest.get("categories")
        if isinstance(man_cats, dict) and not result.error:
            found = {c: n for c, n in categories.items() if n}
            if {c: n for c, n in man_cats.items() if n} != found:
                report.add("category-count", tar_rel, f"categories {found}, manifest says {man_cats}")
    held = quarantined_count(manifest) if isinstance(manifest, dict) else 0
    if spec is not None:
        seg = report.segments.setdefault(planning.segment_of_shard(spec, shard).from_shard, {})
        held_cats = (manifest.get("quarantined") or {}).get("categories") or {} if held else {}
        for cat, n in [*categories.items(), *held_cats.items()]:
            seg[cat] = seg.get(cat, 0) + int(n)
    if held and isinstance(manifest, dict):
        report.quarantined += held
        for cat, n in (manifest["quarantined"].get("categories") or {}).items():
            report.quarantined_categories[cat] = report.quarantined_categories.get(cat, 0) + int(n)
        for key in manifest["quarantined"].get("keys") or []:
            if key in keys:
                report.add("quarantine-leak", f"{tar_rel}:{key}", "a quarantined sample is in the training shard")
    if expected_range is not None and not result.error and len(keys) + held < len(expected_range):
        missing = len(expected_range) - len(keys) - held
        report.add("missing-samples", tar_rel, f"{missing} of the shard's {len(expected_range)} samples are missing")
    report.bytes += result.bytes


def _check_sample(
    item: Sample, shard: int, spec: SynthDatasetSpec | None, expected: range | None, needed: set[str],
    keys: set[str], categories: dict[str, int], report: Report, opts: CheckOptions,
    *, seen_keys: set[str] | None,
) -> None:
    where = f"{planning.shard_path(shard)}:{item.key}"
    if item.key in keys:
        report.add("duplicate-key", where, "the key appears twice in the shard")
        return
    keys.add(item.key)
    if expected is not None:
        idx = int(item.key) if item.key.isdigit() else None
        if idx is None or idx not in expected:
            other = f" (it belongs to shard {planning.shard_of(spec, idx)})" if (
                spec is not None and idx is not None and 0 <= idx < spec.samples) else ""
            report.add("duplicate-key" if other else "key-out-of-range", where,
                       f"key is outside shard {shard}'s index range {expected.start}..{expected.stop - 1}{other}")
    elif seen_keys is not None:
        if item.key in seen_keys:
            report.add("duplicate-key", where, "the key appears in another shard too")
        seen_keys.add(item.key)
    if spec is not None and item.key.isdigit() and 0 <= int(item.key) < spec.samples:  # the category's views/frames
        needed = sample_members(spec, planning.category_of(spec, int(item.key))) - OPTIONAL_MEMBERS
    missing = sorted(needed - set(item.sizes))
    if missing:
        report.add("missing-member", where, "missing " + ", ".join(f"{item.key}.{m}" for m in missing))
    if "json" not in item.data:
        return
    report.samples += 1
    try:
        meta = json.loads(item.data["json"])
    except RecursionError:
        report.add("bad-metadata", where, f"{item.key}.json is nested too deeply")
        return
    except (ValueError, UnicodeDecodeError) as exc:
        report.add("bad-metadata", where, f"{item.key}.json is not valid JSON: {_short(exc)}")
        return
    for msg in metadata_problems(meta, key=item.key, shard=shard, spec=spec,
                                 size=png_size(item.data.get("png", b""))):
        report.add("bad-metadata", where, msg)
    if opts.decode_images:
        images = {ext: data for ext, data in item.data.items() if ext in PASS_FORMATS}
        for msg in sample_image_problems(item.key, images, meta if isinstance(meta, dict) else None,
                                         max_pixels=opts.max_pixels):
            report.add("bad-image", where, msg)
    if isinstance(meta, dict):  # multi-view samples and sequences: the views/frames lists and their images
        for msg in multiview.series_problems(meta, spec):
            report.add("bad-metadata", where, msg)
        for name, vimages, stub in (multiview.view_image_inputs(item.key, item.data, meta)
                                    if opts.decode_images else []):
            vimages = {ext: data for ext, data in vimages.items() if ext in PASS_FORMATS}
            for msg in sample_image_problems(name, vimages, stub, max_pixels=opts.max_pixels):
                report.add("bad-image", where, msg)
    if not isinstance(meta, dict):
        return
    cat = str(meta.get("category", "?"))
    categories[cat] = categories.get(cat, 0) + 1
    report.categories[cat] = report.categories.get(cat, 0) + 1
    score = quality_score(meta)
    if score is not None and report.min_quality is not None:
        report.scored += 1
        report.passed += score >= report.min_quality
    q = meta.get("quality")
    if isinstance(q, dict) and q.get("passed") is False:  # the gate failed it: it belongs in quarantine/
        why = "; ".join(map(str, q.get("reasons") or [])) or f"score {q.get('score')} < minScore"
        report.add("quarantine-leak", where, f"{item.key} failed the quality gate ({why}) but is in a training shard")


def check_dataset(
    files: DatasetFiles,
    *,
    spec: SynthDatasetSpec | None = None,
    options: CheckOptions | None = None,
    on_shard: Callable[[int, int], None] | None = None,
) -> Report:
    """Check the dataset under ``files``; ``spec`` overrides the one in ``dataset.json``."""
    opts = options or CheckOptions()
    report = Report(root=files.root)
    recorded = load_spec(files, report)
    spec = spec or recorded
    total = planning.shard_count(spec) if spec is not None else None
    present = _listed_shards(files, report, total)
    if total is None:
        total = max(present) + 1 if present else 0
        if total == 0:
            report.add("empty", files.root, "no shards or manifests found: is this a dataset root "
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
    files: DatasetFiles, spec: SynthDatasetSpec | None, report: Report, opts: CheckOptions, *, complete: bool
) -> None:
    rate = report.pass_rate
    if rate is not None and report.min_pass_rate is not None and rate < report.min_pass_rate:
        report.add("quality", files.root, f"{rate:.1%} of samples score >= {report.min_quality}, "
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
    doc = _read_json(files, DATASET_JSON, report, "bad-dataset-json")
    formats = [str(f) for f in spec.output.index_formats]
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
