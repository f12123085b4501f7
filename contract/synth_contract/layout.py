"""Where each file of a dataset lives: the data contract's paths, in one place.

A dataset version is a folder (or S3 prefix) ``{uri}/{dataset}/v{version}``; every path here is
relative to it. The worker writes shards, manifests, checkpoints and quarantine; the index writer
``index/`` and ``dataset.json``; validate, preview, report and export read them back.
"""

from __future__ import annotations

SHARDS = "shards"
MANIFESTS = "manifests"
CHECKPOINTS = "checkpoints"
QUARANTINE = "quarantine"

SHARD_TEMPLATE = "shards/{shard:08d}.tar"
MANIFEST_TEMPLATE = "manifests/{shard:08d}.json"
QUARANTINE_TEMPLATES = "quarantine/{shard:08d}.tar, quarantine/{shard:08d}.json"
"""How ``dataset.json`` ``layout`` describes the files (a shard's number, 8 digits)."""

DATASET_JSON = "dataset.json"
INDEX_PARQUET = "index/metadata.parquet"
INDEX_JSONL = "index/metadata.jsonl"
INDEX_PARTS = "index/parts"
"""One parquet file per committed shard, written by the worker before the shard's manifest."""
INDEX_COMPACTED = "index/compacted"
"""The index of a large dataset: parts compacted into files of whole shards (``{first:08d}-{last:08d}.parquet``)."""
INDEX_QUARANTINE = "index/quarantine.jsonl"
"""One line per quarantined sample: shard, key, index, category, score, reasons, every component."""

LOCAL_RUN_JSON = "local-run.json"
"""The spec a local run started with (``synthctl generate`` refuses another spec on the same version)."""
STATE_DIR = ".synth"
"""Run state inside a local dataset root (lock, worker logs); validate and loaders ignore it."""


def dataset_root(uri: str, dataset: str, version: str) -> str:
    """``{uri}/{dataset}/v{version}`` without a doubled slash."""
    return f"{uri.rstrip('/')}/{dataset}/v{version}"


def shard_path(shard: int) -> str:
    return SHARD_TEMPLATE.format(shard=shard)


def manifest_path(shard: int) -> str:
    """The shard's manifest: its commit marker (written after the tar)."""
    return MANIFEST_TEMPLATE.format(shard=shard)


def checkpoint_path(shard: int) -> str:
    """The samples of an unfinished shard, saved when its worker stops."""
    return f"{CHECKPOINTS}/{shard:08d}.tar"


def checkpoint_meta_path(shard: int) -> str:
    return f"{CHECKPOINTS}/{shard:08d}.json"


def index_part_path(shard: int) -> str:
    """The shard's index rows (``index/parts/{shard:08d}.parquet``), named by its manifest's ``indexPart``."""
    return f"{INDEX_PARTS}/{shard:08d}.parquet"


def compacted_path(first: int, last: int) -> str:
    """A compacted index file holding the rows of shards ``first..last`` (inclusive)."""
    return f"{INDEX_COMPACTED}/{first:08d}-{last:08d}.parquet"


def quarantine_path(shard: int) -> str:
    """The tar of a shard's quarantined samples."""
    return f"{QUARANTINE}/{shard:08d}.tar"


def quarantine_list_path(shard: int) -> str:
    """The JSON list of a shard's quarantined samples and why."""
    return f"{QUARANTINE}/{shard:08d}.json"


def shard_of(rel: str, folder: str, suffix: str) -> int | None:
    """The shard number of ``{folder}/{shard:08d}{suffix}`` (e.g. ``manifests/00000012.json`` -> 12), else None."""
    head, _, name = rel.rpartition("/")
    stem = name.removesuffix(suffix)
    if head != folder or stem == name or len(stem) != 8 or not (stem.isascii() and stem.isdigit()):
        return None
    return int(stem)
