"""S3 for the harness: moto's S3 server on 127.0.0.1, and a fault-injecting proxy in front of it.

Renderer pods get the proxy's URL as their endpoint; the harness reads the bucket's truth straight
from moto. The proxy forwards every request unchanged (moto does not check SigV4 signatures, so
the Host header may change) and, with the configured probabilities, injects:

* ``slowdown``: 503 with the S3 ``SlowDown`` error document (S3's request-rate throttling);
* ``reset``: the connection is aborted before the request is forwarded (RST, no response);
* ``partial_upload``: for a request with a body, part of the body is read, then the connection is
  aborted; nothing reaches the store (S3's PUT is atomic);
* ``lost_response``: the request is forwarded and committed, then the connection is aborted before
  the response: the client must treat a retry of a committed write as harmless.

The proxy also counts shard commits: every PUT of a ``manifests/*.json`` key (the commit marker,
written last) that the store accepted, per key, in :attr:`FaultProxy.commits`. A retry of a PUT
whose response the proxy itself dropped (same key, same bytes) is the same commit, not a second
one; any other second accepted PUT of a manifest means the shard was committed twice (rendered
twice, or overwritten by a zombie writer), which the scenarios treat as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.web
import boto3
from moto.server import ThreadedMotoServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
        "content-length", "host"}
COMMIT_KEY = re.compile(r"/manifests/[^/]+\.json$")
"""Paths whose accepted PUT commits a shard (the manifest is the commit marker, docs/ARCHITECTURE.md)."""
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
          b"<Message>Access Denied (injected by the harness)</Message></Error>")


@dataclass
class S3Faults:
    slowdown_rate: float = 0.0
    reset_rate: float = 0.0
    partial_upload_rate: float = 0.0
    lost_response_rate: float = 0.0
    max_each: int = 1_000_000
    """Upper bound per fault kind."""
    deny_puts: tuple[str, ...] = ()
    """Writes to keys containing one of these get 403 AccessDenied, every time (a shard that cannot commit)."""
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)


class MotoS3:
    """moto's S3 server in a thread on 127.0.0.1 (a random free port)."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> MotoS3:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self, access_key: str = "harness", secret_key: str = "harness") -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=access_key, aws_secret_access_key=secret_key)


class FaultProxy:
    """An HTTP reverse proxy on 127.0.0.1 that injects S3 faults (see the module docstring)."""

    def __init__(self, upstream: str, faults: S3Faults | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = faults or S3Faults()
        self.injected: dict[str, int] = {}
        self.requests = 0
        self.access_keys: set[str] = set()
        """Access key ids seen in SigV4 ``Authorization`` headers (who signed the requests)."""
        self.commits: Counter[str] = Counter()
        """Accepted PUTs of each ``manifests/*.json`` path (retries of a dropped response not counted)."""
        self._lost: dict[str, str] = {}
        """Path -> sha256 of a committed manifest PUT whose response this proxy dropped."""
        self.url = ""
        self._runner: aiohttp.web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> FaultProxy:
        runner = self._runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self._handle))
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(auto_decompress=False,
                                              timeout=aiohttp.ClientTimeout(total=60))
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _roll(self, kind: str, rate: float) -> bool:
        if rate and self.injected.get(kind, 0) < self.faults.max_each and self.faults.rng.random() < rate:
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return True
        return False

    def _count_commit(self, path: str, body: bytes, *, lost: bool) -> None:
        digest = hashlib.sha256(body).hexdigest()
        if self._lost.pop(path, None) != digest:  # not the client's retry of a write we answered with RST
            self.commits[path] += 1
        if lost:
            self._lost[path] = digest

    def double_commits(self) -> dict[str, int]:
        """Manifest paths committed more than once, with their commit counts."""
        return {k: v for k, v in sorted(self.commits.items()) if v > 1}

    @staticmethod
    def _abort(request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return aiohttp.web.Response(status=500)  # never reaches the client

    async def _handle(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        self.requests += 1
        auth = request.headers.get("Authorization", "")
        if "Credential=" in auth:
            self.access_keys.add(auth.split("Credential=", 1)[1].split("/", 1)[0])
        f = self.faults
        has_body = request.method in ("PUT", "POST") and (request.content_length or 0) > 0
        if self._roll("reset", f.reset_rate):
            return self._abort(request)
        if has_body and self._roll("partial_upload", f.partial_upload_rate):
            with contextlib.suppress(Exception):
                await request.content.read(max(1, (request.content_length or 2) // 2))
            return self._abort(request)
        body = await request.read()
        if request.method in ("PUT", "POST") and any(k in request.path for k in f.deny_puts):
            self.injected["denied"] = self.injected.get("denied", 0) + 1
            return aiohttp.web.Response(status=403, body=DENIED, content_type="application/xml")
        if self._roll("slowdown", f.slowdown_rate):
            return aiohttp.web.Response(status=503, body=SLOWDOWN, content_type="application/xml")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(request.method, self.upstream + request.rel_url.raw_path_qs,
                                         headers=headers, data=body, allow_redirects=False) as up:
            payload = await up.read()
            status = up.status
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
            up_length = up.headers.get("Content-Length", "0")
        lost = self._roll("lost_response", f.lost_response_rate)
        if request.method == "PUT" and 200 <= status < 300 and COMMIT_KEY.search(request.path):
            self._count_commit(request.path, body, lost=lost)
        if lost:
            return self._abort(request)
        if request.method == "HEAD":  # keep the object's Content-Length (boto3 reads it from HEAD)
            resp = aiohttp.web.Response(status=status, headers=out_headers)
            resp.headers["Content-Length"] = up_length
            return resp
        return aiohttp.web.Response(status=status, body=payload, headers=out_headers)


async def wait_port(url: str, timeout: float = 10.0) -> None:
    """Wait until something answers HTTP at ``url``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as r:
                    await r.read()
                    return
            except aiohttp.ClientError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)
