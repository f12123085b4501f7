"""Quarantine: samples that still fail the quality gate after their re-renders leave the shard.

A shard is rendered into one local tar with every sample (so checkpoints and resume see the
whole attempt); at commit the tar is split in index order into the training shard (samples
that pass) and ``quarantine/{shard:08d}.tar`` (samples that do not), next to
``quarantine/{shard:08d}.json`` which lists each quarantined sample with its score, its
components and its failure reasons. Both quarantine files are uploaded before the shard
manifest (the commit marker), so a committed shard always has its quarantine on record and a
training pipeline that reads ``shards/`` never sees a failed sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_contract import layout
from synth_render import shards

QUARANTINE_SCHEMA = "parallel-synth/quarantine/v1"


@dataclass(frozen=True)
class Split:
    """What ``split_tar`` wrote: the training tar and the quarantine tar (bytes, sha256, samples)."""

    kept: int
    kept_bytes: int
    kept_sha256: str
    quarantined: int
    quarantined_bytes: int
    quarantined_sha256: str


def split_tar(src: Path, quarantined_keys: Iterable[str], kept: Path, held: Path) -> Split:
    """Copy the samples of ``src`` into ``kept`` or ``held`` (the quarantined keys), in order."""
    bad = set(quarantined_keys)
    good_writer, held_writer = shards.ShardWriter(kept), shards.ShardWriter(held)
    try:
        for key, files in shards.read_samples(src):
            (held_writer if key in bad else good_writer).add(key, files)
        kb, ks = good_writer.finish()
        hb, hs = held_writer.finish()
    finally:
        good_writer.close()
        held_writer.close()
    return Split(good_writer.samples, kb, ks, held_writer.samples, hb, hs)


def quarantine_doc(dataset: str, version: str, shard: int, entries: list[dict[str, Any]], split: Split,
                   ) -> dict[str, Any]:
    """The contents of ``quarantine/{shard:08d}.json``."""
    return {"schema": QUARANTINE_SCHEMA, "dataset": dataset, "version": version, "shard": shard,
            "path": layout.quarantine_path(shard), "samples": split.quarantined, "bytes": split.quarantined_bytes,
            "sha256": split.quarantined_sha256, "entries": entries}
