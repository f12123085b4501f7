"""Expired credentials (issue #12 item 11): the operator's API client logs in again on 401.

A tiny API server accepts only the current token. Rotating it (as the kubelet rotates bound
service-account tokens, or an exec plugin's token expires) must cost one retry, not every later
call; credentials that stay refused must turn /healthz red so the kubelet restarts the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import kopf
import pytest
from aiohttp import ClientSession, web

from parallel_synth.cluster import handlers
from parallel_synth.cluster.kube import JOBS, Kube, KubeError


class Api:
    """Answers GET of a Job with 200 for the current token, 401 for any other."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.seen: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.seen.append(auth)
        if auth != f"Bearer {self.token}":
            return web.json_response({"kind": "Status", "code": 401, "message": "Unauthorized"}, status=401)
        return web.json_response({"kind": "Job", "metadata": {"name": request.match_info["name"]}})


async def serve(api: Api) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/apis/batch/v1/namespaces/{ns}/jobs/{name}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def client(url: str, token_file: Path) -> Kube:
    """What ``kube.connect`` builds, with the service-account token read from ``token_file``."""
    def login() -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url, token=token_file.read_text().strip())

    return Kube.from_connection(login(), relogin=login)


def test_a_rotated_token_is_reread_and_the_call_retried_once(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t1")
    api = Api("t1")

    async def scenario() -> None:
        async for url in serve(api):
            kube = client(url, token)
            try:
                assert (await kube.get(JOBS, "ns", "a"))["metadata"]["name"] == "a"
                api.token = "t2"  # the API server now only accepts the rotated token...
                token.write_text("t2")  # ...which the kubelet has written to the projected volume
                assert (await kube.get(JOBS, "ns", "b"))["metadata"]["name"] == "b"
                assert (await kube.get(JOBS, "ns", "c"))["metadata"]["name"] == "c"
                assert kube.unauthorized == 0
            finally:
                await kube.close()

    asyncio.run(scenario())
    assert api.seen == ["Bearer t1", "Bearer t1", "Bearer t2", "Bearer t2"]


async def healthz(memo: kopf.Memo) -> int:
    """Status of GET /healthz from kopf's own liveness server (what ``--liveness`` runs) over our probes."""
    from kopf._core.engines.probing import health_reporter
    from kopf._core.intents.registries import get_default_registry

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ready = asyncio.Event()
    task = asyncio.create_task(health_reporter(
        f"http://127.0.0.1:{port}/healthz", memo=memo, indices={}, registry=get_default_registry(),
        settings=kopf.OperatorSettings(), ready_flag=ready))
    try:
        await ready.wait()
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_credentials_refused_after_relogin_fail_the_liveness_probe(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("revoked")
    api = Api("something-else")
    limit = handlers.SETTINGS.operator.unauthorized_limit

    async def scenario() -> None:
        async for url in serve(api):
            kube = client(url, token)
            memo = kopf.Memo(kube=kube)
            try:
                assert await healthz(memo) == 200
                for n in range(1, limit + 1):
                    assert handlers.api_requests(memo=memo) >= 0  # still alive before the limit
                    with pytest.raises(KubeError) as err:
                        await kube.get(JOBS, "ns", "a")
                    assert err.value.status == 401 and kube.unauthorized == n
                with pytest.raises(kopf.PermanentError, match="401 Unauthorized"):
                    handlers.api_requests(memo=memo)
                assert await healthz(memo) == 500, "the kubelet must see the operator as dead"
                api.token = "revoked"  # an admin fixes the binding: the next success heals the probe
                await kube.get(JOBS, "ns", "a")
                assert kube.unauthorized == 0 and handlers.api_requests(memo=memo) > 0
            finally:
                await kube.close()

    asyncio.run(scenario())
    assert len(api.seen) == 2 * limit + 1, "each refused call logs in again and retries exactly once"
