"""The shard manifest: the commit marker of a shard, written after its tar, and the checks of a commit.

A shard is committed when ``manifests/{shard:08d}.json`` exists and matches its tar (size, and
with ``deep`` the sha256 and the sample count) and its index part (``indexPart``). The manifest
also carries what the dataset's index needs without the renderer: counts per category, quality,
timings, device, the spec digest, provenance and the dataset's class vocabulary (``classes``).

``commit`` is the fenced commit (exactly once under zombie writers): every file whose first
writer must win (quarantine tar and list, shard tar, index part, then the manifest) is created
with a conditional write (``Store.create_*``: ``If-None-Match: *`` on S3, ``link`` on disk). A
file already there with the same bytes is taken as placed (a retried PUT, or a deterministic
re-render); one with other bytes belongs to another writer: if that writer commits (its manifest
appears within ``grace`` seconds) this one has lost and leaves everything alone; if not, the file
is a dead attempt's leftover and is replaced only in the version seen (``If-Match``). The
manifest itself is never overwritten once whole: the loser reports "already committed".
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from synth_contract import index_rows, layout
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import Store
from synth_contract.times import format_time
from synth_render import annotate, shards
from synth_render.logs import event
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
    part = doc.get("indexPart")
    if part is not None:  # manifests written before index parts have none: their tar is the index's source
        if deep:
            problems += index_rows.part_problems(store.read_bytes(layout.index_part_path(shard)), part, shard=shard)
        elif not isinstance(part, dict) or store.size(layout.index_part_path(shard)) != part.get("bytes"):
            problems.append(f"shard {shard}: index part {layout.index_part_path(shard)} is missing or has "
                            "another size than the manifest says")
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
        "resumedSamples": resumed, "committedAt": format_time(datetime.now(UTC)),
        **image_provenance(),  # the renderer image (its digest when pinned): synth_render/provenance.py
    }


COMMIT_GRACE_SECONDS = 15.0
"""How long a writer that finds another writer's file waits for that writer's manifest before it
takes the file for a dead attempt's leftover (the gap between a tar and its manifest is a PUT or two)."""

Placed = Literal["created", "same", "replaced", "lost"]
Source = Path | bytes


@dataclass(frozen=True)
class Committed:
    """What ``commit`` did: ``committed`` this writer's manifest, or found the shard ``already`` committed."""

    status: Literal["committed", "already"]
    manifest: dict[str, Any]
    fenced: bool
    placed: dict[str, str] = field(default_factory=dict)
    """How each file got there (created, same, replaced)."""


class CommitError(RuntimeError):
    """The shard could not be committed in a consistent state (retrying the attempt is safe)."""


def _sha(source: Source) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    return shards.sha256_file(source)


def _stored_sha(store: Store, rel: str) -> str | None:
    h = hashlib.sha256()
    try:
        with store.open(rel) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def _create(store: Store, rel: str, source: Source) -> bool:
    return store.create_file(rel, source) if isinstance(source, Path) else store.create_bytes(rel, source)


def _replace(store: Store, rel: str, source: Source, etag: str) -> bool:
    if isinstance(source, Path):
        return store.replace_file(rel, source, etag=etag)
    return store.replace_bytes(rel, source, etag=etag)


def _place(store: Store, shard: int, rel: str, source: Source, *, grace: float, poll: float,
           sleep: Callable[[float], None]) -> Placed:
    """Put one file of the commit in place without ever overwriting another live writer's."""
    want = _sha(source)
    for _ in range(3):
        if _create(store, rel, source):
            return "created"
        etag = store.etag(rel)
        if etag is None:  # deleted in between (a cleanup): create again
            continue
        if _stored_sha(store, rel) == want:
            return "same"
        waited = 0.0
        while True:  # another writer's file: has that writer committed a whole shard?
            if store.exists(layout.manifest_path(shard)) and not verify_shard(store, shard):
                return "lost"
            if waited >= grace:
                break
            sleep(poll)
            waited += poll
        if store.etag(rel) != etag:
            continue  # it changed while we waited: a live writer, look again
        if _replace(store, rel, source, etag):
            event("leftover of a dead attempt replaced", shard=shard, path=rel)
            return "replaced"
    raise CommitError(f"shard {shard}: {rel} kept changing under this writer; giving up this attempt")


def commit(store: Store, shard: int, files: list[tuple[str, Source]], doc: dict[str, Any], *,
           grace: float = COMMIT_GRACE_SECONDS, poll: float = 0.25,
           sleep: Callable[[float], None] = time.sleep) -> Committed:
    """Commit a shard: ``files`` (relative path, local file or bytes) in order, then the manifest ``doc``.

    Returns ``already`` (and the winner's manifest) when another writer committed the shard
    first and its commit is whole; this writer then has touched nothing of the winner's.
    """
    fenced = store.conditional_writes()
    if not fenced:
        event("store ignores conditional writes: commit falls back to re-reading the manifest", level=30,
              shard=shard, store=store.uri)
    doc = {**doc, "commit": {"fenced": fenced}}
    placed: dict[str, str] = {}
    repair = store.exists(layout.manifest_path(shard))  # a damaged earlier commit: its files are put right
    for rel, source in files:
        how = _place(store, shard, rel, source, grace=grace, poll=poll, sleep=sleep)
        if how == "lost":
            return _lost(store, shard, fenced, placed, repair=repair)
        placed[rel] = how
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()  # as sample.json_bytes
    man = layout.manifest_path(shard)
    tar_rel = layout.shard_path(shard)
    tar_etag = store.etag(tar_rel)
    for _ in range(3):
        if store.create_bytes(man, raw):
            if store.etag(tar_rel) != tar_etag:
                raise CommitError(f"shard {shard}: the tar was replaced while this writer committed its manifest")
            return Committed("committed", doc, fenced, placed)
        existing = store.read_bytes(man)
        if existing == raw:  # our own PUT, retried after a lost response
            return Committed("committed", doc, fenced, placed)
        if existing is not None and not verify_shard(store, shard, deep=True):
            return _lost(store, shard, fenced, placed, repair=repair)
        etag = store.etag(man)  # a manifest that does not match the files: an invalid commit, replace it
        if etag is not None and _replace(store, man, raw, etag):
            event("invalid commit replaced", shard=shard)
            return Committed("committed", doc, fenced, placed)
    raise CommitError(f"shard {shard}: the manifest kept changing under this writer; giving up this attempt")


def _lost(store: Store, shard: int, fenced: bool, placed: dict[str, str], *, repair: bool) -> Committed:
    """Another writer committed first: check that its commit is whole, touch nothing.

    With ``repair`` (the manifest was there before this attempt, its shard damaged) and files
    this writer put back, the shard is whole again under the earlier manifest: ``committed``.
    """
    problems = verify_shard(store, shard, deep=True)
    winner = read_manifest(store, shard)
    if problems or winner is None:
        raise CommitError(f"shard {shard}: committed by another writer, but its commit is not whole: "
                          + "; ".join(problems or ["manifest unreadable"]))
    if repair and any(how in ("created", "replaced") for how in placed.values()):
        event("damaged commit repaired", shard=shard, files=sorted(placed))
        return Committed("committed", winner, fenced, placed)
    event("shard committed by another writer, not overwritten", shard=shard, samples=winner.get("samples"))
    return Committed("already", winner, fenced, placed)
