"""One ``synthctl generate`` per output: an advisory lock on a file in the dataset folder.

Two runs over one output would render the same shards twice and race on their commits. The
first run holds an exclusive ``flock`` on ``{dataset root}/.synth/generate.lock`` (the kernel
drops it when the process dies, however it dies, so a stale lock never needs cleaning) and
writes its pid, host and start time into the file, so a second run can name the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synth_contract.times import format_time


class OutputLocked(Exception):
    """Another process holds the output's lock; ``holder`` is what it wrote (pid, host, started)."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        who = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
        since = f" since {holder['started']}" if holder.get("started") else ""
        super().__init__(f"another `synthctl generate` ({who}{since}) is writing this output; "
                         f"wait for it to finish or stop it (lock: {path})")


def _holder(fd: int) -> dict[str, Any]:
    try:
        doc = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


@contextmanager
def output_lock(path: Path, *, now: datetime | None = None) -> Iterator[None]:
    """Hold ``path``'s lock for the body; raise ``OutputLocked`` at once if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLocked(path, _holder(fd)) from None
        started = format_time(now or datetime.now(UTC))
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, me + b"\n", 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
