"""A stand-in container for the harness's own tests: exits as told, and 143 on SIGTERM.

``FAKE_EXITS`` is JSON ``{"<index>": [code of attempt 0, code of attempt 1, ...]}`` (default 0);
the attempt is ``$FAKE_ATTEMPT`` (the Job controller's per-index failure count annotation).
``FAKE_SECONDS`` is how long to "work" before exiting.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    index = os.environ.get("JOB_COMPLETION_INDEX", "0")
    attempt = int(os.environ.get("FAKE_ATTEMPT", "0") or 0)
    codes = json.loads(os.environ.get("FAKE_EXITS", "{}")).get(index, [0])
    deadline = time.monotonic() + float(os.environ.get("FAKE_SECONDS", "0.2"))
    while time.monotonic() < deadline:
        time.sleep(0.02)
    sys.exit(int(codes[min(attempt, len(codes) - 1)]))


if __name__ == "__main__":
    main()
