"""Where a dataset's files live: one ``Store`` protocol, a local-folder and an S3 implementation.

Everything that reads or writes a dataset (the worker, ``synthctl generate``, validate, preview,
index, report, export) talks to a :class:`Store` rooted at the dataset's root
(``{uri}/{dataset}/v{version}``) and addresses files by relative paths such as
``shards/00000042.tar`` (:mod:`synth_contract.layout`). Reads can be streams (``open``), so a
shard is never held in memory whole. ``open_store`` picks the implementation from a path or URI;
the S3 client is created from endpoint settings or passed in (tests hand in a client for a local
moto server), never patched.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar
from urllib.parse import unquote, urlparse

T = TypeVar("T")


def umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 minus the umask, 0o644 typically).

    ``tempfile.mkstemp`` creates 0o600 files; a dataset renamed from them would be unreadable
    to the other users of a shared disk, so atomic writes set this mode before the rename.
    """
    return 0o666 & ~umask()

MULTIPART_THRESHOLD = 64 * 1024 * 1024
"""Files larger than this are uploaded in parts (and resumed part-wise by boto3's retries)."""


class Store(Protocol):
    """Files addressed by paths relative to the dataset root."""

    uri: str

    def exists(self, path: str) -> bool: ...
    def open(self, path: str) -> BinaryIO:
        """A stream of the file's bytes; ``FileNotFoundError`` when it does not exist."""
        ...
    def read_bytes(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def upload_file(self, path: str, local: Path) -> None: ...
    def download_file(self, path: str, local: Path) -> bool:
        """Copy the object to ``local``; False when it does not exist."""
        ...
    def delete(self, path: str) -> None: ...
    def size(self, path: str) -> int | None: ...
    def list(self, prefix: str) -> Iterator[str]:
        """Paths of the files directly under the folder ``prefix`` (dot files left out on disk)."""
        ...


class FileStore:
    """A folder on a local (or mounted) file system; writes are atomic (write, then rename).

    Paths are plain strings, not ``pathlib`` objects: pathlib interns every path component, and a
    run checks one manifest name per shard, so the interpreter's intern table would grow with the
    dataset. A path that resolves outside the root is refused.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = root.as_uri()
        self._base = os.path.realpath(root)

    def _p(self, path: str) -> str:
        p = os.path.realpath(os.path.join(self._base, path))
        if p != self._base and not p.startswith(self._base + os.sep):
            raise ValueError(f"path {path!r} escapes the store root")
        return p

    def exists(self, path: str) -> bool:
        return os.path.isfile(self._p(path))

    def size(self, path: str) -> int | None:
        try:
            return os.stat(self._p(path)).st_size
        except FileNotFoundError:
            return None

    def open(self, path: str) -> BinaryIO:
        return open(self._p(path), "rb")

    def read_bytes(self, path: str) -> bytes | None:
        p = self._p(path)
        if not os.path.isfile(p):
            return None
        with open(p, "rb") as f:
            return f.read()

    def _atomic(self, path: str, write: Callable[[BinaryIO], None]) -> None:
        dest = self._p(path)
        folder, name = os.path.split(dest)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        os.fchmod(fd, new_file_mode())  # mkstemp's 0600 would hide shards from other users of the disk
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def write_bytes(self, path: str, data: bytes) -> None:
        def write(f: BinaryIO) -> None:
            f.write(data)

        self._atomic(path, write)

    def upload_file(self, path: str, local: Path) -> None:
        def copy(f: BinaryIO) -> None:
            with open(local, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)

        self._atomic(path, copy)

    def download_file(self, path: str, local: Path) -> bool:
        if not self.exists(path):
            return False
        with self.open(path) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return True

    def delete(self, path: str) -> None:
        Path(self._p(path)).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[str]:
        base = self._p(prefix)
        if not os.path.isdir(base):
            return
        for name in sorted(os.listdir(base)):
            if not name.startswith(".") and os.path.isfile(os.path.join(base, name)):
                yield f"{prefix.rstrip('/')}/{name}"


def _retry(fn: Callable[[], T], *, attempts: int, backoff: float, what: str) -> T:
    """Call ``fn``, retrying transient errors with exponential backoff and jitter."""
    from botocore.exceptions import BotoCoreError, ClientError

    for attempt in range(attempts):
        try:
            return fn()
        except ClientError as exc:
            code = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if (code < 500 and code not in (408, 429)) or attempt == attempts - 1:
                raise
        except BotoCoreError:
            if attempt == attempts - 1:
                raise
        time.sleep(backoff * 2**attempt * (0.5 + random.random()))
    raise AssertionError(f"unreachable: {what}")


class S3Store:
    """An S3 (or S3-compatible: MinIO, R2, GCS interop) prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str, *, attempts: int = 5, backoff: float = 0.5,
                 multipart_threshold: int = MULTIPART_THRESHOLD) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._attempts, self._backoff = attempts, backoff
        self._threshold = multipart_threshold

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def _call(self, fn: Callable[[], T], what: str) -> T:
        return _retry(fn, attempts=self._attempts, backoff=self._backoff, what=what)

    @staticmethod
    def _missing(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
            "404", "NoSuchKey", "NotFound")

    def size(self, path: str) -> int | None:
        try:
            head = self._call(lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(path)), "head")
        except Exception as exc:
            if self._missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def exists(self, path: str) -> bool:
        return self.size(path) is not None

    def open(self, path: str) -> BinaryIO:
        try:
            obj = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(path)), "get")
        except Exception as exc:
            if self._missing(exc):
                raise FileNotFoundError(f"{self.uri}/{path}: no such object") from None
            raise
        body: BinaryIO = obj["Body"]
        return body

    def read_bytes(self, path: str) -> bytes | None:
        try:
            with self.open(path) as body:
                return body.read()
        except FileNotFoundError:
            return None

    def write_bytes(self, path: str, data: bytes) -> None:
        self._call(lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=data), "put")

    def upload_file(self, path: str, local: Path) -> None:
        from boto3.s3.transfer import TransferConfig

        cfg = TransferConfig(multipart_threshold=self._threshold, multipart_chunksize=self._threshold // 4 or 1)
        self._call(lambda: self.client.upload_file(str(local), self.bucket, self._key(path), Config=cfg), "upload")

    def download_file(self, path: str, local: Path) -> bool:
        if not self.exists(path):
            return False
        self._call(lambda: self.client.download_file(self.bucket, self._key(path), str(local)), "download")
        return True

    def delete(self, path: str) -> None:
        self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(path)), "delete")

    def list(self, prefix: str) -> Iterator[str]:
        cut = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix.rstrip("/") + "/"), Delimiter="/")
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][cut:]


def make_s3_client(*, endpoint_url: str | None = None, region: str | None = None, attempts: int = 5) -> Any:
    """A boto3 S3 client with standard retries; credentials from the usual AWS sources."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=10, read_timeout=60),
    )


def open_store(location: str, *, endpoint_url: str | None = None, region: str | None = None,
               client: Any = None, attempts: int = 5) -> Store:
    """A store for a local path, ``file:///abs/path`` or ``s3://bucket/prefix``.

    ``attempts``: tries of each S3 call, by the client and again by the store (the worker keeps
    the default; commands that read a dataset interactively pass fewer, so an unreachable
    endpoint is an error in seconds).
    """
    parsed = urlparse(location)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{location!r}: file URIs must be file:///absolute/path")
        return FileStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{location!r}: s3 URIs must be s3://bucket/prefix")
        s3 = client if client is not None else make_s3_client(endpoint_url=endpoint_url, region=region,
                                                              attempts=attempts)
        return S3Store(s3, parsed.netloc, parsed.path, attempts=attempts)
    if "://" in location:
        raise ValueError(f"{location!r}: unsupported scheme: use a path, file:///path or s3://bucket/prefix")
    return FileStore(Path(location).resolve())
