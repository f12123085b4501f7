"""Deterministic WebDataset shard files: writing, checkpoint snapshots and reading back.

Tar members carry fixed metadata (mtime 0, uid/gid 0, mode 0644, no user names) and appear in
a fixed order, so identical samples give a byte-identical tar whichever machine, attempt or
resume produced it. Samples are appended as soon as they are rendered; a checkpoint is the
prefix of complete samples plus the end-of-archive marker.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synth_contract import index_rows

BLOCK = 512
RECORD = 20 * BLOCK
END = b"\0" * (2 * BLOCK)

MEMBER_ORDER = ("png", "json", "depth.png", "seg.png", "normals.png")
"""Order of a sample's files inside the tar (known extensions first, then any others sorted)."""


def _member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    header = info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")
    return header + data + b"\0" * (-len(data) % BLOCK)


def _ordered(files: dict[str, bytes]) -> list[str]:
    known = [e for e in MEMBER_ORDER if e in files]
    return known + sorted(e for e in files if e not in MEMBER_ORDER)


def _closing(length: int) -> bytes:
    """End-of-archive blocks plus padding to a whole record, as tar(1) writes."""
    total = length + len(END)
    return END + b"\0" * (-total % RECORD)


class ShardWriter:
    """Appends samples to a tar file on local disk; thread-safe snapshots for checkpoints."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "wb")  # noqa: SIM115 - closed in finish()/close()
        self._lock = threading.Lock()
        self.samples = 0
        self.length = 0
        self.keys: list[str] = []

    def add(self, key: str, files: dict[str, bytes]) -> None:
        """Append one sample: ``files`` maps extension ('png', 'json', 'seg.png'...) to bytes."""
        if "." in key or not key:
            raise ValueError(f"sample key {key!r} must be non-empty and contain no dots")
        blob = b"".join(_member(f"{key}.{ext}", files[ext]) for ext in _ordered(files))
        with self._lock:
            self._f.write(blob)
            self._f.flush()
            self.length += len(blob)
            self.samples += 1
            self.keys.append(key)

    def snapshot(self, dest: Path) -> tuple[int, int, str]:
        """Write the complete samples so far as a valid tar; returns (samples, bytes, sha256)."""
        with self._lock:
            samples, length = self.samples, self.length
            h = hashlib.sha256()
            with open(self.path, "rb") as src, open(dest, "wb") as out:
                left = length
                while left:
                    chunk = src.read(min(left, 1 << 20))
                    left -= len(chunk)
                    out.write(chunk)
                    h.update(chunk)
                tail = _closing(length)
                out.write(tail)
                h.update(tail)
        return samples, length + len(tail), h.hexdigest()

    def finish(self) -> tuple[int, str]:
        """Close the archive; returns (bytes, sha256)."""
        with self._lock:
            self._f.write(_closing(self.length))
            self._f.close()
        return self.path.stat().st_size, sha256_file(self.path)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_samples(data: bytes | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Samples of a tar in order, as (key, {extension: bytes}); raises on a malformed archive."""
    src: Any = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")  # noqa: SIM115
    with src, tarfile.open(fileobj=src, mode="r:") as tar:
        key: str | None = None
        files: dict[str, bytes] = {}
        for m in tar:
            if not m.isfile():
                raise ValueError(f"unexpected tar member type: {m.name}")
            k, _, ext = m.name.partition(".")
            if not ext:
                raise ValueError(f"tar member without extension: {m.name}")
            if k != key:
                if key is not None:
                    yield key, files
                key, files = k, {}
            f = tar.extractfile(m)
            assert f is not None
            files[ext] = f.read()
        if key is not None:
            yield key, files


def index_part(path: Path, shard: int) -> tuple[bytes, dict[str, Any]]:
    """The shard's index part (parquet bytes) and its manifest entry, from the local tar about to be committed.

    Reads the worker's own local copy (metadata and PNG headers it already has), never the store.
    """
    rows = index_rows.shard_rows_of(read_samples(path), shard)
    data = index_rows.part_bytes(rows)
    return data, index_rows.part_entry(shard, data, len(rows))


def sample_metadata(files: dict[str, bytes]) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(files["json"])
    return meta
