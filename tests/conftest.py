"""Fixtures shared by several test groups: a local S3 (moto server) and in-process Blender scenes.

``tests/`` is on ``sys.path`` (this file's folder: builders, waiting, crd_schema), and so is
``tests/reliability``: its run-in-a-box harness (``box``) serves the reliability, bad-input and
security tests.
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "reliability"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 and a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials for the local S3 server (environment only; boto3 itself is untouched)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture
def s3_client(s3_endpoint: str, aws_env: None) -> Any:
    from synth_contract.store import make_s3_client

    return make_s3_client(endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A fresh bucket per test."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=name)
    return name


def _blender_renderer() -> Iterator[Any]:
    """A Blender scene for in-process renders (as a worker process keeps it); skips without bpy."""
    pytest.importorskip("bpy")
    from synth_render.blender.renderer import BlenderRenderer

    r = BlenderRenderer(device="cpu")
    yield r
    r.close()


@pytest.fixture(scope="session")
def renderer() -> Iterator[Any]:
    """One Blender scene for the in-process render tests of the whole session."""
    yield from _blender_renderer()


@pytest.fixture(scope="module")
def module_renderer() -> Iterator[Any]:
    """A Blender scene of the test module's own (its asset cache and counters start empty)."""
    yield from _blender_renderer()
