"""Checkpoints of an unfinished shard: its complete samples, saved when the worker stops, resumed next time.

``checkpoints/{shard:08d}.tar`` holds the samples rendered so far (a snapshot of the shard tar)
and ``checkpoints/{shard:08d}.json`` its metadata (count, bytes, sha256, the spec digest and the
samples' render seconds). The next attempt takes the samples over only when everything matches
(the same spec digest, the same keys in order, each sample's members and metadata); anything
else discards the checkpoint and the shard starts over.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.multiview import sample_members
from synth_contract.store import Store
from synth_contract.times import format_time
from synth_render import shards
from synth_render.logs import event
from synth_render.manifests import Record, spec_digest
from synth_render.sample import json_bytes

CHECKPOINT_SCHEMA = "parallel-synth/shard-checkpoint/v1"


def save(store: Store, spec: SynthDatasetSpec, shard: int, writer: shards.ShardWriter,
         records: list[Record]) -> int:
    """Upload a snapshot of ``writer``'s complete samples and its metadata; returns how many are saved."""
    local = writer.path.with_suffix(".ckpt.tar")
    samples, size, digest = writer.snapshot(local)
    store.upload_file(layout.checkpoint_path(shard), local)
    meta = {"schema": CHECKPOINT_SCHEMA, "shard": shard, "samples": samples, "bytes": size,
            "sha256": digest, "specDigest": spec_digest(spec),
            "sampleSeconds": [r.seconds for r in records[:samples]],
            "savedAt": format_time(datetime.now(UTC))}
    store.write_bytes(layout.checkpoint_meta_path(shard), json_bytes(meta))
    local.unlink(missing_ok=True)
    event("checkpoint saved", shard=shard, samples=samples, bytes=size)
    return samples


def discard(store: Store, shard: int, why: str) -> None:
    event("checkpoint discarded", shard=shard, reason=why)
    store.delete(layout.checkpoint_meta_path(shard))
    store.delete(layout.checkpoint_path(shard))


def resume(store: Store, spec: SynthDatasetSpec, shard: int, writer: shards.ShardWriter, keys: list[str],
           tmp: Path) -> list[Record]:
    """Copy a verified checkpoint into ``writer``; returns the records of the samples taken over (none: [])."""
    raw = store.read_bytes(layout.checkpoint_meta_path(shard))
    if raw is None:
        if store.exists(layout.checkpoint_path(shard)):
            discard(store, shard, "checkpoint tar without its metadata")
        return []
    try:
        samples, seconds = _verified(store, spec, shard, json.loads(raw), keys, tmp)
    except (ValueError, KeyError, TypeError, OSError) as exc:  # tarfile.TarError is an Exception too
        discard(store, shard, str(exc))
        return []
    except Exception as exc:
        if type(exc).__module__ == "tarfile":
            discard(store, shard, f"checkpoint tar is malformed: {exc}")
            return []
        raise
    records = []
    for i, (key, files) in enumerate(samples):
        writer.add(key, files)
        m = shards.sample_metadata(files)
        q = m["quality"]
        records.append(Record(key, m["category"], float(q["score"]), bool(q["passed"]), int(q["attempts"]),
                              float(seconds[i]) if i < len(seconds) else 0.0, quality=q,
                              index=int(m.get("index", -1))))
    event("checkpoint resumed", shard=shard, samples=len(samples))
    return records


def _verified(store: Store, spec: SynthDatasetSpec, shard: int, meta: Any, keys: list[str],
              tmp: Path) -> tuple[list[tuple[str, dict[str, bytes]]], list[Any]]:
    """The checkpoint's samples and their seconds; ValueError (or a tar error) naming what does not match."""
    if meta.get("shard") != shard or meta.get("schema") != CHECKPOINT_SCHEMA:
        raise ValueError("checkpoint metadata names another shard or schema")
    if meta.get("specDigest") != spec_digest(spec):
        raise ValueError("checkpoint was made with different render settings")
    local = tmp / "resume.tar"
    if not store.download_file(layout.checkpoint_path(shard), local):
        raise ValueError("checkpoint tar is missing")
    if shards.sha256_file(local) != meta.get("sha256"):
        raise ValueError("checkpoint tar does not match its sha256")
    samples = list(shards.read_samples(local))
    if len(samples) != meta.get("samples") or len(samples) > len(keys):
        raise ValueError(f"checkpoint holds {len(samples)} samples, metadata says {meta.get('samples')}")
    for i, (key, files) in enumerate(samples):
        if key != keys[i]:
            raise ValueError(f"checkpoint sample {i} has key {key}, expected {keys[i]}")
        required = sample_members(spec, planning.category_of(spec, int(key)))
        if set(files) != required:
            raise ValueError(f"checkpoint sample {key} has files {sorted(files)}, expected {sorted(required)}")
        m = shards.sample_metadata(files)
        if m.get("key") != key or m.get("shard") != shard:
            raise ValueError(f"checkpoint sample {key} metadata does not match its key")
    local.unlink()
    return samples, list(meta.get("sampleSeconds", []))
