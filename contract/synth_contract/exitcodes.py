"""The worker's exit codes: what the renderer exits with and what the operator's Jobs act on.

One table for both sides (DESIGN "Exit codes"): the renderer exits with these, the Job's pod
failure policy (``parallel_synth.decisions.jobs``) and the batch decision read them.

* 0: the shard is committed (or was already: its manifest is the commit marker).
* 1: an unexpected error: the Job retries the shard (``backoffLimitPerIndex``).
* 2: bad configuration (spec, assets, credentials): retrying cannot help, the Job fails at once.
* 3: the quality gate failed the shard: failed for good (``FailIndex``), never re-rendered in a
  later attempt either, where the same seeds would fail the same way.
* 143: SIGTERM (preemption, eviction, scale-down): the shard checkpointed; not a failure.
"""

from __future__ import annotations

from typing import NoReturn

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_CONFIG = 2
EXIT_QUALITY_GATE = 3
EXIT_SIGTERM = 143


def exit_process(code: int | str | None) -> NoReturn:
    """End the process with ``code`` (a ``SystemExit`` code) without native library teardown.

    Arrow's and DuckDB's native thread pools can abort the process at interpreter teardown
    (``terminate called without an active exception``, exit -6, apache/arrow#34314) after
    all the work is done: a committed shard would then look like a failed pod, and a
    command's exit 1 or 2 like a crash. So the Python side ends properly (the threading exit
    hooks run and non-daemon threads joined, as the interpreter does, then ``atexit`` handlers,
    stdout and stderr flushed) and the process leaves with ``os._exit``, skipping the C++ static
    destructors where the abort happens.
    """
    import atexit
    import contextlib
    import os
    import sys
    import threading

    if code is None:
        status = EXIT_OK
    elif isinstance(code, int):
        status = code & 0xFF
    else:  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        status = EXIT_ERROR
    # What Py_FinalizeEx does first: the threading atexit hooks (concurrent.futures' own, which
    # wakes and ends idle executor workers), then join the non-daemon threads. Joining the threads
    # without the hooks waited forever on an idle ThreadPoolExecutor worker: `synthctl operator`
    # (kopf runs sync handlers in asyncio's default executor) never exited after SIGTERM and was
    # SIGKILLed at the end of the pod's grace period (seen on the real control plane, issue #21).
    shutdown = getattr(threading, "_shutdown", None)
    if threading.current_thread() is threading.main_thread() and callable(shutdown):
        shutdown()
    else:  # not the main thread (or no such hook): join what can be joined
        me = threading.current_thread()
        for thread in threading.enumerate():
            if thread is not me and not thread.daemon and thread.is_alive() and thread is not threading.main_thread():
                thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`synthctl ... | head`)
            stream.flush()
    os._exit(status)
