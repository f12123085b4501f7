"""Read a WebDataset shard as a stream, sample by sample, without extracting anything.

One pass over the bytes does everything: it hashes them (sha256, byte count), walks the tar
headers with ``tarfile`` in stream mode, refuses hostile members (absolute paths, ``..``,
links, devices, huge sizes) by reporting them instead of reading them, and groups the regular
members into samples by key, as WebDataset does (the key is the name up to the first dot of
its last path component). Only the extensions the caller asks for are read into memory.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

MAX_MEMBER_BYTES = 256 * 1024 * 1024
"""A member larger than this is reported as hostile and skipped (a 8K 16-bit image is ~200 MB)."""

HEAD_BYTES = 64


class HashingReader:
    """A read-only stream wrapper that hashes and counts the bytes read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def drain(self) -> None:
        """Read to the end (tarfile stops at the end-of-archive blocks; the hash covers all)."""
        while self.read(1 << 20):
            pass


@dataclass
class Sample:
    """The members of one sample: ``ext -> bytes`` for loaded ones, ``ext -> size`` for all."""

    key: str
    sizes: dict[str, int] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Hostile:
    """A member that a careless extractor would turn into harm; never read."""

    name: str
    reason: str


@dataclass
class ScanResult:
    """What the end of a scan knows: the hash and size of the whole stream, and whether it ended well."""

    sha256: str = ""
    bytes: int = 0
    error: str | None = None


def hostile_reason(info: tarfile.TarInfo, *, max_member_bytes: int) -> str | None:
    """Why a tar member is unsafe to extract or read, or ``None``."""
    name = info.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "path with '..'"
    if info.issym() or info.islnk():
        return f"link to {info.linkname!r}"
    if info.isdir():
        return None
    if not info.isreg():
        return "not a regular file (device, fifo or special)"
    if info.size > max_member_bytes:
        return f"huge member ({info.size:,} bytes > {max_member_bytes:,})"
    return None


def split_key(name: str) -> tuple[str, str]:
    """WebDataset's grouping: ``dir/000000000012.seg.png`` -> (``dir/000000000012``, ``seg.png``)."""
    dirname, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return (posixpath.join(dirname, stem) if dirname else stem), ext


def scan_shard(
    stream: BinaryIO,
    result: ScanResult,
    *,
    load: frozenset[str] = frozenset({"json"}),
    heads: frozenset[str] = frozenset(),
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> Iterator[Sample | Hostile]:
    """Yield the samples (and hostile members) of a shard in tar order; fill ``result`` at the end.

    Members whose extension is in ``load`` are read whole; for those in ``heads`` only the
    first ``HEAD_BYTES`` (enough for an image header).

    A truncated or corrupt tar ends the iteration with ``result.error`` set; the samples before
    the damage are still yielded.
    """
    reader = HashingReader(stream)
    current: Sample | None = None
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for info in tar:
                reason = hostile_reason(info, max_member_bytes=max_member_bytes)
                if reason is not None:
                    yield Hostile(info.name, reason)
                    continue
                if info.isdir():
                    continue
                key, ext = split_key(info.name)
                if current is None or current.key != key:
                    if current is not None:
                        yield current
                    current = Sample(key)
                if ext in current.sizes:
                    yield Hostile(info.name, "repeated member name")
                    continue
                current.sizes[ext] = info.size
                if ext in load or ext in heads:
                    f = tar.extractfile(info)
                    want = info.size if ext in load else min(info.size, HEAD_BYTES)
                    data = f.read(want) if f is not None else b""
                    if len(data) != want:
                        raise tarfile.ReadError(f"unexpected end of data in {info.name}")
                    current.data[ext] = data
            end = tar.offset
        if current is not None:
            yield current
        reader.drain()
        # tarfile's stream mode ends quietly at an early EOF; a whole archive goes on past the
        # last member with two zero blocks (the end-of-archive marker).
        if reader.bytes < end + 2 * tarfile.BLOCKSIZE:
            raise tarfile.ReadError(
                f"the archive ends at byte {reader.bytes:,}, before its end-of-archive marker"
            )
    except (tarfile.TarError, EOFError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    result.sha256 = reader.sha256.hexdigest()
    result.bytes = reader.bytes
