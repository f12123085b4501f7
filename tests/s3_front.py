"""Small HTTP servers that stand in front of the moto S3 server and answer as real S3 does where moto cannot.

moto (5.2) checks IAM policies when asked (``/moto-api/reset-auth``) but not as S3 answers them: a
GET of a missing key is still 404 NoSuchKey for an identity without ``s3:ListBucket`` (S3 says 403
AccessDenied), and a HEAD is refused for every key (moto checks an ``s3:HeadObject`` action that
IAM does not have; S3 checks ``s3:GetObject``). So the policies are played here, in front of a real
moto server, on the wire: boto3 talks HTTP to the front (``endpoint_url``), never patched.

- :func:`s3_front` forwards every request to moto and applies a :class:`Policy` (no ListBucket:
  list requests and reads of missing keys answer 403; read-only: writes answer 403 too);
- :func:`answering` answers every request with one status and S3 error code (throttling: 503 SlowDown);
- :func:`resetting` accepts connections and resets them (a connection reset by the peer).
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}


def _error_xml(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>front</RequestId></Error>").encode()


@dataclass(frozen=True)
class Policy:
    """What the identity behind the front may do (as an IAM policy would say)."""

    list_bucket: bool = True
    """``s3:ListBucket``: without it, list requests and reads of keys that do not exist answer 403."""
    get_object: bool = True
    """``s3:GetObject``: without it, every GET and HEAD of a key answers 403."""
    put_object: bool = True
    """``s3:PutObject``: without it, every PUT of a key answers 403."""


class _Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int] = ("127.0.0.1", 0)
    policy: Policy = Policy()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        length = str(len(body))
        for k, v in headers:
            if k.lower() == "content-length" and self.command == "HEAD":
                length = v  # a HEAD answer carries the length of the object it has no body for
            elif k.lower() not in _HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _denied(self) -> None:
        self._answer(403, [("Content-Type", "application/xml")], _error_xml("AccessDenied", "Access Denied"))

    def _handle(self) -> None:
        body = self._body()
        path = urlparse(self.path)
        key = path.path.lstrip("/").partition("/")[2]
        reads = self.command in ("GET", "HEAD")
        if not key and self.command == "GET" and not self.policy.list_bucket and (
                "list-type" in path.query or "prefix" in path.query or not path.query):
            return self._denied()
        if key and reads and not self.policy.get_object:
            return self._denied()
        if key and self.command == "PUT" and not self.policy.put_object:
            return self._denied()
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None,
                         headers={**headers, "Content-Length": str(len(body))} if body or self.command in (
                             "PUT", "POST") else headers)
            resp = conn.getresponse()
            data = resp.read()
            if key and reads and resp.status == 404 and not self.policy.list_bucket:
                return self._denied()  # S3 hides a missing key from an identity that may not list
            self._answer(resp.status, resp.getheaders(), data)
        finally:
            conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def s3_front(upstream: str, policy: Policy) -> Iterator[str]:
    """An endpoint URL that forwards to the S3 server at ``upstream`` and answers as ``policy`` says."""
    u = urlparse(upstream)
    handler = type("Front", (_Front,), {"upstream": (u.hostname or "127.0.0.1", u.port or 80), "policy": policy})
    with _serving(handler) as url:
        yield url


@contextmanager
def answering(status: int, code: str) -> Iterator[str]:
    """An endpoint URL whose every request is answered ``status`` with the S3 error ``code``."""

    class Fixed(_Front):
        def _handle(self) -> None:
            self._body()
            self._answer(status, [("Content-Type", "application/xml")], _error_xml(code, code))

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

    with _serving(Fixed) as url:
        yield url


@contextmanager
def resetting() -> Iterator[str]:
    """An endpoint URL that accepts each connection and resets it (RST) before any answer."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def closed_port() -> str:
    """An endpoint URL on which nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"
