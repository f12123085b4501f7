"""An S3 endpoint that ignores conditional writes, as some S3 clones do: moto behind a proxy that drops the headers.

Every request is forwarded to moto unchanged except that ``If-None-Match`` and ``If-Match`` are
removed, so a conditional create of an existing key succeeds (overwrites). The proxy runs its own
event loop in a daemon thread; ``url`` is its endpoint.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp
import aiohttp.web

_DROP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length", "host",
         "if-none-match", "if-match"}


class DeafProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""
        self.conditional_requests = 0
        """Requests that carried a condition header (dropped on the way to moto)."""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: aiohttp.web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> DeafProxy:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self._handle))
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession(auto_decompress=False)

    def stop(self) -> None:
        async def _stop() -> None:
            if self._session is not None:
                await self._session.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _handle(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await request.read()
        if {"if-none-match", "if-match"} & {k.lower() for k in request.headers}:
            self.conditional_requests += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        assert self._session is not None
        async with self._session.request(request.method, self.upstream + request.rel_url.raw_path_qs,
                                         headers=headers, data=body, allow_redirects=False) as up:
            payload = await up.read()
            out: dict[str, Any] = {k: v for k, v in up.headers.items() if k.lower() not in _DROP}
            if request.method == "HEAD":
                resp = aiohttp.web.Response(status=up.status, headers=out)
                resp.headers["Content-Length"] = up.headers.get("Content-Length", "0")
                return resp
            return aiohttp.web.Response(status=up.status, body=payload, headers=out)
