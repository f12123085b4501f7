"""Where shards land: one small Store interface with a local-folder and an S3 implementation.

The worker only ever talks to a :class:`Store` rooted at the dataset's root
(``{uri}/{dataset}/v{version}``) and addresses objects by relative paths such as
``shards/00000042.tar``. ``open_store`` picks the implementation from the URI; the S3 client
is created from endpoint settings or passed in (tests hand in a client for a local moto
server), never patched.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar
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
    """Objects addressed by paths relative to the dataset root."""

    uri: str

    def exists(self, path: str) -> bool: ...
    def read_bytes(self, path: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def upload_file(self, path: str, local: Path) -> None: ...
    def download_file(self, path: str, local: Path) -> bool:
        """Copy the object to ``local``; False when it does not exist."""
        ...
    def delete(self, path: str) -> None: ...
    def size(self, path: str) -> int | None: ...


class FileStore:
    """A folder on a local (or mounted) file system; writes are atomic (write, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = root.as_uri()

    def _p(self, path: str) -> Path:
        p = (self.root / path).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise ValueError(f"path {path!r} escapes the store root")
        return p

    def exists(self, path: str) -> bool:
        return self._p(path).is_file()

    def size(self, path: str) -> int | None:
        p = self._p(path)
        return p.stat().st_size if p.is_file() else None

    def read_bytes(self, path: str) -> bytes | None:
        p = self._p(path)
        return p.read_bytes() if p.is_file() else None

    def _atomic(self, path: str, write: Callable[[Path], None]) -> None:
        dest = self._p(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        os.fchmod(fd, new_file_mode())  # mkstemp's 0600 would hide shards from other users of the disk
        os.close(fd)
        try:
            write(Path(tmp))
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def write_bytes(self, path: str, data: bytes) -> None:
        def write(p: Path) -> None:
            p.write_bytes(data)

        self._atomic(path, write)

    def upload_file(self, path: str, local: Path) -> None:
        def copy(p: Path) -> None:
            with open(local, "rb") as src, open(p, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)

        self._atomic(path, copy)

    def download_file(self, path: str, local: Path) -> bool:
        data = self.read_bytes(path)
        if data is None:
            return False
        local.write_bytes(data)
        return True

    def delete(self, path: str) -> None:
        self._p(path).unlink(missing_ok=True)


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
        self.uri = f"s3://{bucket}/{self.prefix}"
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

    def read_bytes(self, path: str) -> bytes | None:
        try:
            obj = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(path)), "get")
        except Exception as exc:
            if self._missing(exc):
                return None
            raise
        data: bytes = obj["Body"].read()
        return data

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


def make_s3_client(*, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 S3 client with standard retries; credentials from the usual AWS sources."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=region or os.environ.get("AWS_REGION") or "us-east-1",
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60),
    )


def open_store(root_uri: str, *, endpoint_url: str | None = None, region: str | None = None,
               client: Any = None) -> Store:
    """A store for ``file:///abs/path`` or ``s3://bucket/prefix``."""
    parsed = urlparse(root_uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{root_uri!r}: file URIs must be file:///absolute/path")
        return FileStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{root_uri!r}: s3 URIs must be s3://bucket/prefix")
        s3 = client if client is not None else make_s3_client(endpoint_url=endpoint_url, region=region)
        return S3Store(s3, parsed.netloc, parsed.path)
    raise ValueError(f"{root_uri!r}: unsupported scheme (use file:///path or s3://bucket/prefix)")
