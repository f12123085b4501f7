"""Waiting in tests for what another thread or process does (an operator, KMock, `synthctl generate`).

Those give the test no event to wait on, so ``wait_for`` polls what they change, every 50 ms,
and fails with what it was waiting for: never a bare ``sleep``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition",
             proc: subprocess.Popen[str] | None = None) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Fails after ``timeout`` seconds, or as soon as ``proc`` (the process expected to make it
    true) has ended. A predicate that reads a half-written object (KeyError, IndexError,
    TypeError) counts as not yet.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (KeyError, IndexError, TypeError):
            last = None
        if last:
            return last
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
