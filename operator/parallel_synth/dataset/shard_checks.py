"""``synthctl validate`` of one shard: its manifest, its tar read as a stream, every sample in it.

The tar's sha256 and size must match the manifest; the tar is read with ``tarfile`` (never
extracted) and every member must be safe (no absolute paths, ``..``, links, devices or huge
members); every sample has its metadata and one file per pass; sample and category counts match
the manifest and the planner; each key lies in its own shard's index range (so uniqueness across
the dataset is checked in O(shard) memory). The shard's index part, when its manifest names
one, must be whole (sha256), have the index schema and hold one row per sample of the tar.
"""

from __future__ import annotations

from typing import Any

from parallel_synth.dataset.files import strict_json
from parallel_synth.dataset.images import PASS_FORMATS, sample_image_problems
from parallel_synth.dataset.problems import CheckOptions, Report, read_json
from parallel_synth.dataset.records import metadata_problems, png_size, quality_score
from parallel_synth.dataset.tars import Hostile, Sample, ScanResult, scan_shard
from synth_contract import index_rows, layout, multiview, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.multiview import sample_members
from synth_contract.passes import OPTIONAL_MEMBERS, PASS_EXT
from synth_contract.store import Store
from synth_contract.validation import one_line

MANIFEST_FIELDS = ("shard", "samples", "sha256", "bytes")


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
    files: Store, shard: int, spec: SynthDatasetSpec | None, report: Report, opts: CheckOptions,
    *, seen_keys: set[str] | None,
) -> None:
    """Check one committed-or-not shard; adds problems and counts to ``report``."""
    tar_rel, man_rel = layout.shard_path(shard), layout.manifest_path(shard)
    has_manifest, tar_size = files.exists(man_rel), files.size(tar_rel)
    if not has_manifest and tar_size is None:
        report.add("missing-shard", tar_rel, "neither the tar nor its manifest exists")
        return
    if not has_manifest:
        report.add("missing-manifest", man_rel, "the tar exists but was never committed (no manifest)")
        return
    manifest = read_json(files, man_rel, report, "bad-manifest")
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
    keys_in_order: list[str] = []
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
                keys_in_order.append(item.key)
    except OSError as exc:  # a directory where the tar should be, permissions, a vanished file
        report.add("unreadable-shard", tar_rel, f"cannot be read: {one_line(exc, 200)}")
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
    if isinstance(manifest, dict) and manifest.get("indexPart") is not None:
        _check_part(files, shard, manifest, keys_in_order, report, tar_whole=not result.error)
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


def _check_part(files: Store, shard: int, manifest: dict[str, Any], keys: list[str], report: Report, *,
                tar_whole: bool) -> None:
    """The shard's index part: present, whole (sha256), the index schema, one row per sample of the tar."""
    rel = layout.index_part_path(shard)
    size = files.size(rel)
    if size is not None and size > index_rows.MAX_PART_BYTES:
        report.add("bad-index-part", rel, f"{size:,} bytes, more than {index_rows.MAX_PART_BYTES:,}: not read")
        return
    data = files.read_bytes(rel) if size is not None else None
    problems = index_rows.part_problems(data, manifest["indexPart"], shard=shard)
    for msg in problems:
        report.add("missing-index-part" if data is None else "bad-index-part", rel, msg)
    if problems or data is None:
        return
    if isinstance(manifest.get("samples"), int) and manifest["indexPart"]["rows"] != manifest["samples"]:
        report.add("bad-index-part", rel, f"shard {shard}: {manifest['indexPart']['rows']} rows for the "
                   f"manifest's {manifest['samples']} samples")
        return
    part_keys = index_rows.read_part(data).column("key").to_pylist()
    if tar_whole and part_keys != keys:
        report.add("bad-index-part", rel, f"shard {shard}: its keys are not the tar's "
                   f"({len(part_keys)} rows, {len(keys)} samples in the tar)")


def _check_sample(
    item: Sample, shard: int, spec: SynthDatasetSpec | None, expected: range | None, needed: set[str],
    keys: set[str], categories: dict[str, int], report: Report, opts: CheckOptions,
    *, seen_keys: set[str] | None,
) -> None:
    where = f"{layout.shard_path(shard)}:{item.key}"
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
        meta = strict_json(item.data["json"])  # NaN/Infinity are not JSON
    except RecursionError:
        report.add("bad-metadata", where, f"{item.key}.json is nested too deeply")
        return
    except (ValueError, UnicodeDecodeError) as exc:
        report.add("bad-metadata", where, f"{item.key}.json is not valid JSON: {one_line(exc, 200)}")
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
