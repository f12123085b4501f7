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

import contextlib
import errno
import logging
import os
import random
import shutil
import tempfile
import time
import uuid
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

_CONDITIONAL: dict[tuple[str, str], bool] = {}
"""Whether each (endpoint, bucket) honours ``If-None-Match``: probed once per process (``S3Store.conditional_writes``)."""
STATE_PROBE = ".synth/probe"
"""Scratch keys of the conditional-write and read-permission probes (deleted right after; validate and
loaders ignore ``.synth``)."""
_FORBIDDEN_IS_ABSENT: dict[tuple[str, str, str], bool] = {}
"""Whether each (endpoint, bucket, prefix) answers 403 for a missing key (no ``s3:ListBucket``): probed once
per process (``S3Store.forbidden_means_absent``)."""

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
    def etag(self, path: str) -> str | None:
        """An opaque version tag of the file (S3's ETag), None when it does not exist."""
        ...
    def create_file(self, path: str, local: Path) -> bool:
        """Create the file only if nothing is there (conditional write); False when something is."""
        ...
    def create_bytes(self, path: str, data: bytes) -> bool: ...
    def replace_file(self, path: str, local: Path, *, etag: str) -> bool:
        """Overwrite the file only if its version is still ``etag``; False when it changed or vanished."""
        ...
    def replace_bytes(self, path: str, data: bytes, *, etag: str) -> bool: ...
    def conditional_writes(self) -> bool:
        """Whether the store honours conditional creates (probed once per store); when it does not,
        ``create_*``/``replace_*`` check, then write: a race between two writers is not excluded."""
        ...


class CommitRace(RuntimeError):
    """A conditional write met a concurrent one that the store could not order (S3's 409); try again."""


class StoreForbidden(PermissionError):
    """The store refused a read or write (S3's 403) that was not a missing key: the identity's policy
    lacks an action (see docs/ARCHITECTURE.md, Cloud permissions); retrying cannot help."""


_TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests",
    "RequestLimitExceeded", "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
    "ExpiredToken", "ExpiredTokenException", "RequestTimeTooSkewed", "OperationAborted",
})


def transient_s3_error(exc: BaseException) -> bool:
    """Whether an S3 call's error may pass if the call is made again later (by the next pod attempt).

    Transient: no answer (connection refused or reset, DNS, timeouts, TLS), throttling after the
    client's own retries (SlowDown, 429, 503), server errors (5xx), an expired token, and a credential
    endpoint that did not answer (IMDS, IRSA/STS, SSO). Permanent: every other answer of the store
    (NoSuchBucket, AccessDenied/403, InvalidAccessKeyId, a bad bucket name...) and client-side
    configuration errors (a bad endpoint URL, region or parameter).
    """
    from botocore import exceptions as bce

    if isinstance(exc, bce.ClientError):
        err = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or status in (408, 429) or str(err.get("Code", "")) in _TRANSIENT_CODES
    transient: tuple[type[BaseException], ...] = (
        bce.ConnectionError, bce.HTTPClientError, bce.IncompleteReadError, bce.ChecksumError,
        bce.CredentialRetrievalError, bce.MetadataRetrievalError, bce.NoCredentialsError, bce.TokenRetrievalError,
        bce.CapacityNotAvailableError)
    if isinstance(exc, transient):
        return True
    if isinstance(exc, bce.BotoCoreError):
        return False
    try:
        from boto3.exceptions import RetriesExceededError
        from s3transfer.exceptions import RetriesExceededError as TransferRetriesExceeded
    except ImportError:  # pragma: no cover - boto3 always brings s3transfer
        return isinstance(exc, OSError)
    return isinstance(exc, (RetriesExceededError, TransferRetriesExceeded, OSError))


def _tmp_beside(dest: str) -> tuple[int, str]:
    folder, name = os.path.split(dest)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.fchmod(fd, new_file_mode())
    return fd, tmp


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

    def etag(self, path: str) -> str | None:
        try:
            st = os.stat(self._p(path))
        except FileNotFoundError:
            return None
        return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"

    def _staged(self, dest: str, write: Callable[[BinaryIO], None]) -> str:
        fd, tmp = _tmp_beside(dest)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp

    def _create(self, path: str, write: Callable[[BinaryIO], None]) -> bool:
        """Stage the bytes beside the destination, then ``link`` them in: atomic, and it fails if the name exists."""
        dest = self._p(path)
        tmp = self._staged(dest, write)
        try:
            os.link(tmp, dest)
            return True
        except FileExistsError:
            return False
        except OSError as exc:  # no hard links on this file system: an O_EXCL claim file orders the writers
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            folder, name = os.path.split(dest)
            try:
                os.close(os.open(os.path.join(folder, f".{name}.claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return False
            if os.path.exists(dest):
                return False
            os.replace(tmp, dest)
            return True
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _replace(self, path: str, etag: str, write: Callable[[BinaryIO], None]) -> bool:
        """Compare and swap under an ``flock`` that every replacer of this path takes."""
        import fcntl

        dest = self._p(path)
        tmp = self._staged(dest, write)
        folder, name = os.path.split(dest)
        try:
            with open(os.path.join(folder, f".{name}.lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if self.etag(path) != etag:
                    return False
                os.replace(tmp, dest)
                return True
        finally:
            Path(tmp).unlink(missing_ok=True)

    def create_file(self, path: str, local: Path) -> bool:
        return self._create(path, _copier(local))

    def create_bytes(self, path: str, data: bytes) -> bool:
        return self._create(path, _bytes_writer(data))

    def replace_file(self, path: str, local: Path, *, etag: str) -> bool:
        return self._replace(path, etag, _copier(local))

    def replace_bytes(self, path: str, data: bytes, *, etag: str) -> bool:
        return self._replace(path, etag, _bytes_writer(data))

    def conditional_writes(self) -> bool:
        return True  # link(2) (or O_EXCL) refuses an existing name on every local file system

    def list(self, prefix: str) -> Iterator[str]:
        base = self._p(prefix)
        if not os.path.isdir(base):
            return
        for name in sorted(os.listdir(base)):
            if not name.startswith(".") and os.path.isfile(os.path.join(base, name)):
                yield f"{prefix.rstrip('/')}/{name}"


def _bytes_writer(data: bytes) -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        f.write(data)

    return write


def _copier(local: Path) -> Callable[[BinaryIO], None]:
    def copy(f: BinaryIO) -> None:
        with open(local, "rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)

    return copy


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

    @staticmethod
    def _forbidden(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("403", "AccessDenied")

    def _absent(self, exc: Exception, path: str) -> bool:
        """Whether a failed HEAD/GET of ``path`` means "no such object"; raises :class:`StoreForbidden`
        for a 403 that is a refusal, so the caller never mistakes it for a transient error.

        S3 answers 404 for a missing key only to an identity allowed ``s3:ListBucket``; to others it
        answers 403, as it does for a refused read. A 403 counts as absent once
        :meth:`forbidden_means_absent` has shown that this identity may read under this root.
        """
        if self._missing(exc):
            return True
        if not self._forbidden(exc):
            return False
        if self.forbidden_means_absent():
            return True
        raise StoreForbidden(
            f"{self.uri}/{path}: access denied (403). The identity needs s3:GetObject (and s3:PutObject) on "
            f"arn:aws:s3:::{self.bucket}/{self.prefix + '/' if self.prefix else ''}*, and s3:ListBucket on "
            f"arn:aws:s3:::{self.bucket} so that S3 answers 404 for keys not written yet") from exc

    def forbidden_means_absent(self) -> bool:
        """Whether a 403 on a read under this root is a missing key: probed once per process and root.

        False when the identity may list the bucket (then S3 says 404 for a missing key, and a 403 is a
        refusal). Otherwise a scratch object is written and read back under ``.synth/probe``: when that
        works, reads are allowed under the root and a 403 can only be a key that is not there yet.
        When it does not (a read-only identity without ``s3:ListBucket``), a 403 stays a refusal.
        """
        where = (str(getattr(self.client.meta, "endpoint_url", "")), self.bucket, self.prefix)
        known = _FORBIDDEN_IS_ABSENT.get(where)
        if known is None:
            known = _FORBIDDEN_IS_ABSENT[where] = self._probe_reads()
            if known:
                logging.getLogger("synth_contract.store").warning(
                    "%s: this identity may not list the bucket (no s3:ListBucket), so S3 answers 403 for keys "
                    "not written yet; they are read as absent (grant s3:ListBucket to tell them apart)", self.uri)
        return known

    def _probe_reads(self) -> bool:
        try:
            self._call(lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(STATE_PROBE),
                                                           MaxKeys=1), "list probe")
            return False
        except Exception as exc:
            if not self._forbidden(exc):
                raise
        probe = self._key(f"{STATE_PROBE}/{uuid.uuid4().hex}")
        try:
            self._call(lambda: self.client.put_object(Bucket=self.bucket, Key=probe, Body=b""), "read probe")
            self._call(lambda: self.client.head_object(Bucket=self.bucket, Key=probe), "read probe")
            return True
        except Exception as exc:
            if self._forbidden(exc):
                return False
            raise
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=probe)

    def size(self, path: str) -> int | None:
        try:
            head = self._call(lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(path)), "head")
        except Exception as exc:
            if self._absent(exc, path):
                return None
            raise
        return int(head["ContentLength"])

    def exists(self, path: str) -> bool:
        return self.size(path) is not None

    def open(self, path: str) -> BinaryIO:
        try:
            obj = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=self._key(path)), "get")
        except Exception as exc:
            if self._absent(exc, path):
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

    def etag(self, path: str) -> str | None:
        try:
            head = self._call(lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(path)), "head")
        except Exception as exc:
            if self._absent(exc, path):
                return None
            raise
        return str(head["ETag"])

    @staticmethod
    def _code(exc: Exception) -> str:
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            return ""
        return str(exc.response.get("Error", {}).get("Code") or
                   exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))

    def _conditional(self, path: str, source: bytes | Path, cond: dict[str, str]) -> bool:
        """PUT with ``If-None-Match``/``If-Match``; False on 412 (the condition did not hold)."""
        key = self._key(path)
        for _ in range(self._attempts):
            try:
                if isinstance(source, Path) and source.stat().st_size > self._threshold:
                    if "IfMatch" in cond and self.etag(path) != cond["IfMatch"]:
                        return False  # checked here too: some stores (moto 5.2) ignore If-Match on completion
                    self._multipart(key, source, cond)
                elif isinstance(source, Path):
                    def put_file(src: Path = source) -> Any:
                        with open(src, "rb") as body:
                            return self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **cond)

                    self._call(put_file, "conditional put")
                else:
                    def put(data: bytes = source) -> Any:
                        return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **cond)

                    self._call(put, "conditional put")
                return True
            except Exception as exc:
                code = self._code(exc)
                if code in ("PreconditionFailed", "412"):
                    return False
                if code in ("ConditionalRequestConflict", "409"):  # a concurrent conditional write: retry
                    time.sleep(self._backoff * (0.5 + random.random()))
                    continue
                if "IfMatch" in cond and self._missing(exc):  # S3 answers 404 to If-Match on a gone key
                    return False
                raise
        raise CommitRace(f"{self.uri}/{path}: conditional write kept conflicting with another writer")

    def _multipart(self, key: str, local: Path, cond: dict[str, str]) -> None:
        """A multipart upload whose completion carries the condition (boto3's transfer manager cannot)."""
        chunk = max(self._threshold // 4, 5 * 1024 * 1024)
        up = self._call(lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key), "mpu")
        uid = up["UploadId"]
        try:
            parts = []
            with open(local, "rb") as f:
                n = 1
                while data := f.read(chunk):
                    def part(data: bytes = data, n: int = n) -> Any:
                        return self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=uid, PartNumber=n,
                                                       Body=data)

                    parts.append({"ETag": self._call(part, "part")["ETag"], "PartNumber": n})
                    n += 1
            self._call(lambda: self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts}, **cond), "complete")
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=uid)
            raise

    def _checked(self, path: str, source: bytes | Path, *, etag: str | None) -> bool:
        """The fallback of a store that ignores conditions: check, then write (today's re-read)."""
        if self.etag(path) != etag:
            return False
        if isinstance(source, Path):
            self.upload_file(path, source)
        else:
            self.write_bytes(path, source)
        return True

    def create_file(self, path: str, local: Path) -> bool:
        if not self.conditional_writes():
            return self._checked(path, local, etag=None)
        return self._conditional(path, local, {"IfNoneMatch": "*"})

    def create_bytes(self, path: str, data: bytes) -> bool:
        if not self.conditional_writes():
            return self._checked(path, data, etag=None)
        return self._conditional(path, data, {"IfNoneMatch": "*"})

    def replace_file(self, path: str, local: Path, *, etag: str) -> bool:
        if not self.conditional_writes():
            return self._checked(path, local, etag=etag)
        return self._conditional(path, local, {"IfMatch": etag})

    def replace_bytes(self, path: str, data: bytes, *, etag: str) -> bool:
        if not self.conditional_writes():
            return self._checked(path, data, etag=etag)
        return self._conditional(path, data, {"IfMatch": etag})

    def conditional_writes(self) -> bool:
        """Probe once per bucket and endpoint: create a scratch key twice with ``If-None-Match: *``.

        A store that accepts the second create ignores the header (some S3 clones); one that
        refuses the header itself (400/501) cannot fence either. Both fall back, with a warning.
        """
        where = (str(getattr(self.client.meta, "endpoint_url", "")), self.bucket)
        known = _CONDITIONAL.get(where)
        if known is None:
            known = _CONDITIONAL[where] = self._probe()
            if not known:
                logging.getLogger("synth_contract.store").warning(
                    "%s ignores conditional writes (If-None-Match): commits fall back to re-reading the manifest "
                    "before writing it, which does not exclude two writers committing in the same instant",
                    self.uri)
        return known

    def _probe(self) -> bool:
        probe = self._key(f"{STATE_PROBE}/{uuid.uuid4().hex}")
        try:
            first = self._conditional_raw(probe)
            second = self._conditional_raw(probe)
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=probe)
        return first and not second

    def _conditional_raw(self, key: str) -> bool:
        try:
            self._call(lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=b"", IfNoneMatch="*"),
                       "probe")
            return True
        except Exception as exc:
            if self._code(exc) in ("PreconditionFailed", "412"):
                return False
            if self._code(exc) in ("NotImplemented", "501", "InvalidArgument", "400"):
                return True  # the header itself is refused: treated as "ignored" by the caller (second True)
            raise

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
