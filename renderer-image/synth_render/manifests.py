"""The shard manifest: the commit marker of a shard, written after its tar, and the checks of a commit.

A shard is committed when ``manifests/{shard:08d}.json`` exists and matches its tar (size, and
with ``deep`` the sha256 and the sample count). The manifest also carries what the dataset's
index needs without the renderer: counts per category, quality, timings, device, the spec
digest, provenance and the dataset's class vocabulary (``classes``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from synth_contract import layout
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import Store
from synth_render import annotate, shards
from synth_render.provenance import image_provenance

MANIFEST_SCHEMA = "parallel-synth/shard-manifest/v1"


@dataclass
class Record:
    """One sample of a shard attempt: what the manifest, the quarantine and a checkpoint keep of it."""

    key: str
    category: str
    score: float
    passed: bool
    attempts: int
    seconds: float
    quality: dict[str, Any] = field(default_factory=dict)
    index: int = -1


def spec_digest(spec: SynthDatasetSpec) -> str:
    """Digest of the spec fields that decide sample content (a checkpoint must match them)."""
    w = spec.wire()
    keep = {k: w.get(k) for k in ("samples", "seed", "version", "shardSize", "categories", "render", "quality")}
    for extra in ("schedule", "derivedFrom"):  # only when set: checkpoints of datasets without stay valid
        if w.get(extra):
            keep[extra] = w[extra]
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def read_manifest(store: Store, shard: int) -> dict[str, Any] | None:
    """The shard's manifest when it exists and is well-formed, else None."""
    raw = store.read_bytes(layout.manifest_path(shard))
    return None if raw is None else _parse_manifest(raw, shard)


def _parse_manifest(raw: bytes, shard: int) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("shard") != shard or not isinstance(doc.get("sha256"), str):
        return None
    return doc


def verify_shard(store: Store, shard: int, *, deep: bool = False) -> list[str]:
    """Problems with a committed shard (empty when fine); ``deep`` re-hashes the tar."""
    raw = store.read_bytes(layout.manifest_path(shard))
    if raw is None:
        return [f"shard {shard}: manifest {layout.manifest_path(shard)} is missing"]
    doc = _parse_manifest(raw, shard)  # the bytes just read: one GET of the manifest, not two
    if doc is None:
        return [f"shard {shard}: manifest is corrupt (not JSON or missing shard/sha256)"]
    size = store.size(layout.shard_path(shard))
    if size is None:
        return [f"shard {shard}: tar {layout.shard_path(shard)} is missing"]
    problems = []
    if size != doc.get("bytes"):
        problems.append(f"shard {shard}: tar has {size} bytes, manifest says {doc.get('bytes')}")
    if deep:
        data = store.read_bytes(layout.shard_path(shard)) or b""
        if hashlib.sha256(data).hexdigest() != doc["sha256"]:
            problems.append(f"shard {shard}: tar sha256 does not match the manifest")
        else:
            n = sum(1 for _ in shards.read_samples(data))
            if n != doc.get("samples"):
                problems.append(f"shard {shard}: tar has {n} samples, manifest says {doc.get('samples')}")
    return problems


def pass_rate(records: list[Record]) -> float:
    return sum(r.passed for r in records) / len(records) if records else 0.0


def manifest(spec: SynthDatasetSpec, dataset: str, shard: int, records: list[Record], *, indices: range, size: int,
             digest: str, device: str, engine_version: str, t0: float, resumed: int) -> dict[str, Any]:
    """The manifest of a shard whose tar (``size`` bytes, sha256 ``digest``) holds the passing ``records``."""
    scores = [r.score for r in records]
    kept = [r for r in records if r.passed]
    held = [r for r in records if not r.passed]
    cats: dict[str, int] = {}
    held_cats: dict[str, int] = {}
    for r in kept:
        cats[r.category] = cats.get(r.category, 0) + 1
    for r in held:
        held_cats[r.category] = held_cats.get(r.category, 0) + 1
    render_s = sum(r.seconds for r in records)
    return {
        "schema": MANIFEST_SCHEMA, "dataset": dataset, "version": spec.version, "shard": shard,
        "path": layout.shard_path(shard), "samples": len(kept), "firstIndex": indices.start,
        "lastIndex": indices.stop - 1, "sha256": digest, "bytes": size, "categories": dict(sorted(cats.items())),
        "keys": {"first": kept[0].key, "last": kept[-1].key} if kept else None,
        "quarantined": {"samples": len(held), "keys": [r.key for r in held],
                        "categories": dict(sorted(held_cats.items())),
                        "path": layout.quarantine_path(shard) if held else None},
        "quality": {"mean": round(sum(scores) / len(scores), 4), "min": round(min(scores), 4),
                    "passRate": round(pass_rate(records), 4),
                    "rerenders": sum(r.attempts - 1 for r in records),
                    "minScore": spec.quality.min_score, "scores": scores},
        "timings": {"renderSeconds": round(render_s, 3), "totalSeconds": round(time.perf_counter() - t0, 3),
                    "sampleSeconds": [r.seconds for r in records]},
        "device": device, "engine": str(spec.render.engine), "engineVersion": engine_version,
        "passes": [str(p) for p in spec.render.passes], "specDigest": spec_digest(spec),
        "classes": annotate.dataset_vocabulary(spec),  # dataset.json classes, for an index without the renderer
        "resumedSamples": resumed, "committedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        **image_provenance(),  # the renderer image (its digest when pinned): synth_render/provenance.py
    }
