"""Read and write the files of one dataset version, on a local disk or in S3.

A thin I/O adapter and nothing else: validate, preview and the index writer take a
``DatasetFiles`` and never know where the bytes live. Paths are relative to the dataset
root (``{uri}/{dataset}/v{version}``), as in DESIGN.md's data contract. Reads are streams,
so a shard is never held in memory whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from synth_contract.store import new_file_mode


class DatasetFiles(Protocol):
    """The files under one dataset root."""

    root: str

    def exists(self, rel: str) -> bool: ...

    def size(self, rel: str) -> int | None: ...

    def open(self, rel: str) -> BinaryIO: ...

    def read_bytes(self, rel: str) -> bytes: ...

    def write_bytes(self, rel: str, data: bytes) -> None: ...

    def put_file(self, rel: str, local: Path) -> None: ...

    def list(self, prefix: str) -> Iterator[str]: ...


class LocalFiles:
    """A dataset root on a local file system; writes are atomic (temp file, then rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.as_uri()
        self._base = str(path)

    def _p(self, rel: str) -> Path:
        return self.path / rel

    # exists/size use plain strings: pathlib interns every path component, and a run checks
    # one manifest name per shard, so the interpreter's intern table would grow with the dataset.
    def exists(self, rel: str) -> bool:
        return os.path.isfile(os.path.join(self._base, rel))

    def size(self, rel: str) -> int | None:
        try:
            return os.stat(os.path.join(self._base, rel)).st_size
        except FileNotFoundError:
            return None

    def open(self, rel: str) -> BinaryIO:
        return self._p(rel).open("rb")

    def read_bytes(self, rel: str) -> bytes:
        return self._p(rel).read_bytes()

    def _atomic(self, rel: str) -> tuple[Path, int, str]:
        target = self._p(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.fchmod(fd, new_file_mode())
        return target, fd, tmp

    def write_bytes(self, rel: str, data: bytes) -> None:
        target, fd, tmp = self._atomic(rel)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)

    def put_file(self, rel: str, local: Path) -> None:
        target, fd, tmp = self._atomic(rel)
        with os.fdopen(fd, "wb") as f, local.open("rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)
        os.replace(tmp, target)

    def list(self, prefix: str) -> Iterator[str]:
        base = self._p(prefix)
        if not base.is_dir():
            return
        for name in sorted(os.listdir(base)):
            if not name.startswith(".") and (base / name).is_file():
                yield f"{prefix.rstrip('/')}/{name}"


class S3Files:
    """A dataset root in S3 (or MinIO, R2, ... through ``endpoint_url``)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.root = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _head(self, rel: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._key(rel))
            return head
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, rel: str) -> bool:
        return self._head(rel) is not None

    def size(self, rel: str) -> int | None:
        head = self._head(rel)
        return None if head is None else int(head["ContentLength"])

    def open(self, rel: str) -> BinaryIO:
        body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"]
        return body

    def read_bytes(self, rel: str) -> bytes:
        with self.open(rel) as f:
            return f.read()

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)

    def put_file(self, rel: str, local: Path) -> None:
        self.client.upload_file(str(local), self.bucket, self._key(rel))

    def list(self, prefix: str) -> Iterator[str]:
        full = self._key(prefix.rstrip("/") + "/")
        cut = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"][cut:]


def open_dataset(
    location: str, *, endpoint_url: str | None = None, region: str | None = None, client: Any = None
) -> DatasetFiles:
    """The files of a dataset root given as a path, ``file://`` URI or ``s3://`` URI."""
    if location.startswith("s3://"):
        parsed = urlparse(location)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
                region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
                # an unreachable endpoint is an error in seconds, not minutes of silent retries
                config=Config(connect_timeout=10, read_timeout=120, retries={"max_attempts": 3, "mode": "standard"}),
            )
        return S3Files(parsed.netloc, parsed.path, client)
    if location.startswith("file://"):
        return LocalFiles(Path(unquote(urlparse(location).path)))
    if "://" in location:
        raise ValueError(f"{location!r}: use a path, file:///path or s3://bucket/prefix")
    return LocalFiles(Path(location).resolve())
