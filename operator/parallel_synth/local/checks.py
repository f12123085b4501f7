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
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from parallel_synth import planning
from parallel_synth.api import SynthDatasetSpec
from parallel_synth.local.index import DATASET_JSON, INDEX_JSONL, INDEX_PARQUET
from parallel_synth.local.records import PASS_EXT, metadata_problems, png_size, quality_score
from parallel_synth.local.store import DatasetFiles
from parallel_synth.local.tars import MAX_MEMBER_BYTES, Hostile, Sample, ScanResult, scan_shard

MAX_LISTED_PROBLEMS = 1000
"""Problems kept in the report; the count covers all of them."""

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

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.scored if self.scored else None

    def add(self, code: str, where: str, message: str) -> None:
        self.problem_count += 1
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
            "shards": {"expected": self.shards_expected, "checked": self.shards_checked},
            "samples": self.samples,
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
        return json.loads(files.read_bytes(rel))
    except (ValueError, UnicodeDecodeError) as exc:
        report.add(code, rel, f"not valid JSON: {exc}")
    return None


def load_spec(files: DatasetFiles, report: Report) -> SynthDatasetSpec | None:
    """The spec recorded in ``dataset.json`` (a missing or broken file is a problem)."""
    if not files.exists(DATASET_JSON):
        report.add("missing-dataset-json", DATASET_JSON,
                   "missing: the dataset was not finished (generate writes it when all shards are committed)")
        return None
    doc = _read_json(files, DATASET_JSON, report, "bad-dataset-json")
    if not isinstance(doc, dict):
        return None
    report.dataset = doc.get("name")
    try:
        return SynthDatasetSpec.model_validate(doc.get("spec"))
    except ValidationError as exc:
        report.add("bad-dataset-json", DATASET_JSON, f"spec is not a valid SynthDataset spec: {exc.errors()[:3]}")
    return None


def _listed_shards(files: DatasetFiles, report: Report, total: int | None) -> int:
    """Flag files that do not belong in shards/ or manifests/; return the highest shard + 1 seen."""
    highest = -1
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
            highest = max(highest, shard)
    return highest + 1


def check_manifest(manifest: Any, shard: int, spec: SynthDatasetSpec | None) -> list[str]:
    """What is wrong with a shard manifest by itself (pure)."""
    if not isinstance(manifest, dict):
        return ["manifest is not a JSON object"]
    out = [f"missing field {f!r}" for f in MANIFEST_FIELDS if f not in manifest]
    if "shard" in manifest and manifest["shard"] != shard:
        out.append(f"says shard {manifest['shard']}, stored as shard {shard}")
    if spec is not None and "samples" in manifest:
        expected = len(planning.shard_range(spec, shard))
        if manifest["samples"] != expected:
            out.append(f"says {manifest['samples']} samples, the planner expects {expected}")
    return out


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
    needed = {"json", *(PASS_EXT[p] for p in passes)}
    keys: set[str] = set()
    categories: dict[str, int] = {}
    result = ScanResult()
    with files.open(tar_rel) as stream:
        for item in scan_shard(stream, result, load=frozenset({"json"}), heads=frozenset({"png"}),
                               max_member_bytes=opts.max_member_bytes):
            if isinstance(item, Hostile):
                if item.reason == "repeated member name":
                    report.add("duplicate-key", f"{tar_rel}:{item.name}", "the member appears twice")
                else:
                    report.add("hostile-member", f"{tar_rel}:{item.name}", item.reason)
                continue
            _check_sample(item, shard, spec, expected_range, needed, keys, categories, report, opts,
                          seen_keys=seen_keys)
    if result.error:
        report.add("truncated-tar", tar_rel, f"unreadable after {len(keys)} samples: {result.error}")
    if isinstance(manifest, dict):
        if manifest.get("bytes") is not None and manifest["bytes"] != result.bytes:
            report.add("size-mismatch", tar_rel, f"{result.bytes:,} bytes, manifest says {manifest['bytes']:,}")
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
    if expected_range is not None and not result.error and len(keys) < len(expected_range):
        missing = len(expected_range) - len(keys)
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
    missing = sorted(needed - set(item.sizes))
    if missing:
        report.add("missing-member", where, "missing " + ", ".join(f"{item.key}.{m}" for m in missing))
    if "json" not in item.data:
        return
    report.samples += 1
    try:
        meta = json.loads(item.data["json"])
    except (ValueError, UnicodeDecodeError) as exc:
        report.add("bad-metadata", where, f"{item.key}.json is not valid JSON: {exc}")
        return
    for msg in metadata_problems(meta, key=item.key, shard=shard, spec=spec,
                                 size=png_size(item.data.get("png", b""))):
        report.add("bad-metadata", where, msg)
    if not isinstance(meta, dict):
        return
    cat = str(meta.get("category", "?"))
    categories[cat] = categories.get(cat, 0) + 1
    report.categories[cat] = report.categories.get(cat, 0) + 1
    score = quality_score(meta)
    if score is not None and report.min_quality is not None:
        report.scored += 1
        report.passed += score >= report.min_quality


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
    seen = _listed_shards(files, report, total)
    if total is None:
        total = seen
        if total == 0:
            report.add("empty", files.root, "no shards or manifests found: is this a dataset root "
                       "({uri}/{dataset}/v{version})?")
    report.shards_expected = total
    report.min_quality = opts.min_quality if opts.min_quality is not None else (
        spec.quality.min_score if spec is not None else None)
    report.min_pass_rate = opts.min_pass_rate if opts.min_pass_rate is not None else (
        spec.quality.min_pass_rate if spec is not None else None)
    seen_keys: set[str] | None = set() if spec is None else None
    for shard in range(total):
        check_shard(files, shard, spec, report, opts, seen_keys=seen_keys)
        if on_shard is not None:
            on_shard(shard, total)
    _check_totals(files, spec, report, opts, complete=report.shards_checked == total)
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
    if complete:
        for cat in sorted(set(report.targets) | set(report.categories)):
            found, target = report.categories.get(cat, 0), report.targets.get(cat, 0)
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
        completed = (doc.get("samples") or {}).get("completed")
        if completed != report.samples:
            report.add("bad-dataset-json", DATASET_JSON,
                       f"samples.completed is {completed}, the shards hold {report.samples:,}")
