"""``exit_process``: the Python side ends as the interpreter would, then ``os._exit``.

Run in a subprocess each: ``exit_process`` ends the process it runs in.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# An idle ThreadPoolExecutor worker (asyncio's default executor after kopf ran a sync handler):
# only concurrent.futures' threading exit hook wakes it. Joining it without that hook hung
# `synthctl operator` forever after SIGTERM (issue #21, the real control plane).
IDLE_EXECUTOR = """
import concurrent.futures
pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
assert pool.submit(lambda: 41 + 1).result() == 42
"""
NON_DAEMON_THREAD = """
import threading, time
def work():
    time.sleep(0.2)
    print("thread done", flush=True)
threading.Thread(target=work).start()
"""
ATEXIT = """
import atexit
atexit.register(lambda: print("atexit ran", flush=True))
"""


@pytest.mark.parametrize(("setup", "code", "printed"), [
    (IDLE_EXECUTOR, 0, ""),
    (IDLE_EXECUTOR + ATEXIT, 3, "atexit ran"),
    (NON_DAEMON_THREAD, 2, "thread done"),
    ("", "bad things", ""),
], ids=["idle-executor", "executor-and-atexit", "non-daemon-thread-joined", "message"])
def test_exit_process_ends_with_the_code_after_python_shutdown(setup: str, code: int | str, printed: str) -> None:
    prog = textwrap.dedent(setup) + f"\nfrom synth_contract.exitcodes import exit_process\nexit_process({code!r})\n"
    proc = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == (code if isinstance(code, int) else 1), proc.stderr
    assert printed in proc.stdout
    if isinstance(code, str):
        assert code in proc.stderr
