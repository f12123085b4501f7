"""Fetch library, environment and texture files into a per-worker cache with a size cap.

A URI is ``file:///dir``, ``s3://bucket/prefix`` (read through :mod:`synth_contract.store`, so
``endpointUrl``, region and the usual AWS credentials apply) or ``builtin:NAME``
(``builtin:studiolights``: the HDRIs inside the bpy wheel; ``builtin:sample-objects``: the
project's generated sample library). ``file://`` and ``builtin:`` files are read in place after
the path checks; ``s3://`` files are downloaded into ``{cache}/{hash of uri}/{path}`` and evicted
least-recently-used first once the cache exceeds ``max_bytes``.

Paths are checked twice: :func:`~synth_render.assets.catalog.safe_relpath` refuses ``..``,
absolute paths and backslashes, and a resolved path must stay inside its root (file://: no
symlinks anywhere below the library root; cache: never outside the cache folder).

Two kinds of failure: :class:`Unreachable` when the URI itself is wrong (a bad form, no such
folder or bucket, access denied, nothing below it): bad configuration, the worker exits 2; and
:class:`Unavailable` when the store did not answer or asked to slow down (connection refused or
reset, DNS, timeouts, throttling or 5xx after the client's retries, a credential endpoint that did
not answer): the worker exits 1 and the Job retries the pod.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from synth_render.assets import sample_library
from synth_render.assets.catalog import UnsafePath, companions, safe_relpath

DEFAULT_CACHE_BYTES = 4 * 1024**3
BUILTINS = ("studiolights", "sample-objects")
"""Names that ``builtin:NAME`` accepts."""


class Unreachable(OSError):
    """A URI that cannot be used as written (bad form, missing folder or bucket, access denied, empty)."""


class Unavailable(OSError):
    """A URI whose store did not answer this time (network, throttling, 5xx, credential endpoint): retryable."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri = uri


def _failure(uri: str, what: str, exc: Exception) -> Unreachable | Unavailable:
    """The error to raise for an S3 call on ``uri`` that failed with ``exc``."""
    from synth_contract.store import transient_s3_error

    why = f"{type(exc).__name__}: {exc}"
    if transient_s3_error(exc):
        return Unavailable(uri, f"{uri}: {what} failed for now, retryable ({why})")
    return Unreachable(f"{uri}: {what} ({why})")


@dataclass
class AssetCache:
    """A per-worker download folder with an LRU size cap, and the S3 settings to fetch with."""

    root: Path
    max_bytes: int = DEFAULT_CACHE_BYTES
    endpoint_url: str | None = None
    region: str | None = None
    client: Any = None
    """An S3 client to use (tests hand in one for a local moto server); default: made from settings."""
    _lru: OrderedDict[Path, int] = field(default_factory=OrderedDict, repr=False)
    _listings: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    _skipped: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    evictions: int = 0
    downloads: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()
        found = []
        for dirpath, _dirs, names in os.walk(self.root):
            for n in names:
                p = Path(dirpath) / n
                if not n.startswith(".") and p.is_file() and not p.is_symlink():
                    st = p.stat()
                    found.append((st.st_atime, p, st.st_size))
        for _, p, size in sorted(found):
            self._lru[p] = size

    def slot(self, uri: str) -> Path:
        """The cache folder of one URI."""
        return self.root / hashlib.sha256(uri.encode()).hexdigest()[:16]

    def inside(self, p: Path) -> Path:
        """``p`` if it lies inside the cache folder, else :class:`UnsafePath`."""
        r = p.resolve()
        if not r.is_relative_to(self.root):
            raise UnsafePath(f"{p} would land outside the asset cache {self.root}")
        return r

    def _touch(self, p: Path, size: int) -> None:
        with self._lock:
            self._lru.pop(p, None)
            self._lru[p] = size

    def _evict(self, keep: set[Path]) -> None:
        with self._lock:
            total = sum(self._lru.values())
            for p in list(self._lru):
                if total <= self.max_bytes:
                    break
                if p in keep:
                    continue
                total -= self._lru.pop(p)
                p.unlink(missing_ok=True)
                self.evictions += 1


S3_TIMEOUT_ENV = "SYNTHCTL_S3_TIMEOUT"
DEFAULT_S3_TIMEOUT = 20.0
"""Seconds an interactive command (``assets check``, ``render-sample``) waits for an S3 connection and
each response; an endpoint that accepts and never answers is an error after two of these."""


def interactive_client(endpoint_url: str | None, region: str | None) -> Any:
    """An S3 client for a command a person waits on: short timeouts (``$SYNTHCTL_S3_TIMEOUT``), two tries."""
    import boto3
    from botocore.config import Config

    try:
        timeout = float(os.environ.get(S3_TIMEOUT_ENV) or DEFAULT_S3_TIMEOUT)
    except ValueError:
        timeout = DEFAULT_S3_TIMEOUT
    if not 0.1 <= timeout <= 3600:
        timeout = DEFAULT_S3_TIMEOUT
    return boto3.client(
        "s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"},
                      connect_timeout=timeout, read_timeout=timeout))


# --------------------------------------------------------------------------- sources


def _bpy_datafiles() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise Unreachable("builtin:studiolights needs bpy (pip install 'parallel-synth[render]')")
    base = Path(next(iter(spec.submodule_search_locations)))
    for cand in sorted(base.glob("*/datafiles/studiolights/world"), reverse=True):
        if cand.is_dir():
            return cand
    raise Unreachable(f"builtin:studiolights: no datafiles/studiolights/world inside {base}")


def _builtin_root(name: str, cache: AssetCache) -> Path:
    if name == "studiolights":
        return _bpy_datafiles()
    if name == "sample-objects":
        return sample_library.ensure(cache.root / "builtin-sample-objects")
    raise Unreachable(f"builtin:{name}: unknown (built-in: {', '.join(BUILTINS)})")


def _parse(uri: str) -> tuple[str, str, str]:
    """(scheme, bucket or '', path) of an asset URI; raises Unreachable on other forms."""
    if uri.startswith("builtin:"):
        return "builtin", "", uri.removeprefix("builtin:")
    p = urlparse(uri)
    if p.scheme == "file" and p.netloc in ("", "localhost"):
        path = unquote(p.path)
        if any(part == ".." for part in path.split("/")) or "\x00" in path:
            raise Unreachable(f"{uri}: '..' is not allowed in an asset URI (checked after decoding %-escapes)")
        return "file", "", path
    if p.scheme == "s3" and p.netloc:
        return "s3", p.netloc, p.path.strip("/")
    raise Unreachable(f"{uri}: allowed forms are file:///absolute/dir, s3://bucket/prefix and builtin:NAME")


def _local_root(uri: str, cache: AssetCache) -> Path | None:
    scheme, _, path = _parse(uri)
    if scheme == "builtin":
        return _builtin_root(path, cache)
    if scheme == "file":
        root = Path(path)
        if not root.is_dir():
            raise Unreachable(f"{uri}: no such directory")
        return root
    return None


def _s3(uri: str, cache: AssetCache) -> tuple[Any, str, str]:
    from synth_contract.store import S3Store, open_store

    store = open_store(uri, endpoint_url=cache.endpoint_url, region=cache.region, client=cache.client)
    assert isinstance(store, S3Store)
    return store.client, store.bucket, store.prefix


def _walk(root: Path, skipped: dict[str, str] | None = None) -> dict[str, int]:
    """Regular files below ``root``; symlinks, FIFOs, devices and sockets are left out (and named in
    ``skipped``: {relative path: why}) so that no read ever follows one out of the library or blocks."""
    out: dict[str, int] = {}
    for dirpath, dirs, names in os.walk(root, followlinks=False):
        for d in dirs:
            if not d.startswith(".") and (Path(dirpath) / d).is_symlink() and skipped is not None:
                skipped[(Path(dirpath) / d).relative_to(root).as_posix()] = "a symlinked folder (not followed)"
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(dirpath) / d).is_symlink())
        for n in names:
            p = Path(dirpath) / n
            if n.startswith("."):
                continue
            if p.is_symlink() or not p.is_file():
                if skipped is not None:
                    skipped[p.relative_to(root).as_posix()] = ("a symlink (not followed inside a library)"
                                                               if p.is_symlink() else "not a regular file")
                continue
            out[p.relative_to(root).as_posix()] = p.stat().st_size
    return out


def skipped_files(uri: str, cache: AssetCache) -> dict[str, str]:
    """What :func:`list_uri` left out of a local library: {relative path: why} (symlinks, FIFOs, devices)."""
    return cache._skipped.get(uri, {})


def list_uri(uri: str, cache: AssetCache) -> dict[str, int]:
    """Every file below a URI as {relative path: bytes} (symlinks and hidden files left out).

    Raises :class:`Unreachable` when the URI cannot be listed (or holds nothing at all), and
    :class:`Unavailable` when its store did not answer (retryable).
    """
    if uri in cache._listings:
        return cache._listings[uri]
    try:
        root = _local_root(uri, cache)
        if root is not None:
            skipped: dict[str, str] = {}
            files = _walk(root, skipped)
            cache._skipped[uri] = skipped
        else:
            client, bucket, prefix = _s3(uri, cache)
            files = {}
            pre = f"{prefix}/" if prefix else ""
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=pre):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(pre):]
                    if rel and not rel.endswith("/"):
                        files[rel] = int(obj["Size"])
    except (Unreachable, Unavailable):
        raise
    except Exception as exc:  # botocore errors, permissions, network: say which URI and why
        raise _failure(uri, "cannot list it", exc) from exc
    if not files:
        raise Unreachable(f"{uri}: is empty (no files below it)")
    cache._listings[uri] = files
    return files


def local_root(uri: str, cache: AssetCache) -> Path | None:
    """The folder a file:// or builtin: URI reads in place (None: s3://); raises :class:`Unreachable`."""
    return _local_root(uri, cache)


def _checked_local(root: Path, rel: str) -> Path:
    rel = safe_relpath(rel)
    p = root
    for part in rel.split("/"):
        p = p / part
        if p.is_symlink():
            raise UnsafePath(f"{rel}: symlinks are not followed inside a library")
    if not p.resolve().is_relative_to(root.resolve()):
        raise UnsafePath(f"{rel}: resolves outside the library")
    return p


def fetch_file(uri: str, rel: str, cache: AssetCache) -> Path:
    """A local path to the file ``rel`` below ``uri``, downloading it into the cache if needed."""
    rel = safe_relpath(rel)
    root = _local_root(uri, cache)
    if root is not None:
        p = _checked_local(root, rel)
        if not p.is_file():
            raise FileNotFoundError(f"{uri}/{rel}: no such file")
        return p
    dest = cache.inside(cache.slot(uri) / rel)
    if not dest.is_file():
        client, bucket, prefix = _s3(uri, cache)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        os.close(fd)
        try:
            client.download_file(bucket, f"{prefix}/{rel}" if prefix else rel, tmp)
            os.replace(tmp, dest)
        except Exception as exc:
            Path(tmp).unlink(missing_ok=True)
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"{uri}/{rel}: no such object") from exc
            raise _failure(f"{uri}/{rel}", "cannot download it", exc) from exc
        cache.downloads += 1
    cache._touch(dest, dest.stat().st_size)
    return dest


def fetch_asset(uri: str, rel: str, cache: AssetCache) -> Path:
    """The asset file and its companions (OBJ: MTL and maps; glTF: buffers and images), local.

    A companion path that escapes the library raises :class:`UnsafePath`; a missing companion is
    left out (Blender then renders without that texture).
    """
    main = fetch_file(uri, rel, cache)
    fmt = rel.rsplit(".", 1)[-1].lower()
    kept = {main}
    todo = [(rel, fmt, main)]
    seen = {rel}
    while todo:
        ref_rel, ref_fmt, ref_path = todo.pop()
        if ref_fmt not in ("obj", "mtl", "gltf"):
            continue
        folder = ref_rel.rsplit("/", 1)[0] if "/" in ref_rel else ""
        for dep in companions(ref_fmt, ref_path.read_bytes()):
            dep_rel = safe_relpath(f"{folder}/{dep}" if folder else dep)
            if dep_rel in seen:
                continue
            seen.add(dep_rel)
            try:
                p = fetch_file(uri, dep_rel, cache)
            except FileNotFoundError:
                continue
            kept.add(p)
            todo.append((dep_rel, dep_rel.rsplit(".", 1)[-1].lower(), p))
    if _local_root(uri, cache) is None:
        cache._evict(keep={cache.inside(p) for p in kept})
    return main


def resolve_uri_dir(uri: str, cache: AssetCache) -> Path:
    """A local folder with every file below ``uri`` (environments, texture sets).

    file:// and builtin: resolve in place; s3:// prefixes are downloaded into the cache (the
    whole prefix must fit in the cache's size cap). Raises :class:`Unreachable`, or
    :class:`Unavailable` when the store did not answer.
    """
    root = _local_root(uri, cache)
    if root is not None:
        return root
    files = list_uri(uri, cache)
    total = sum(files.values())
    if total > cache.max_bytes:
        raise Unreachable(f"{uri}: {total} bytes do not fit in the asset cache ({cache.max_bytes} bytes)")
    kept = set()
    for rel in sorted(files):
        try:
            kept.add(cache.inside(fetch_file(uri, rel, cache)))
        except UnsafePath:
            continue
    cache._evict(keep=kept)
    return cache.slot(uri)
