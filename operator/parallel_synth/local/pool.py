"""The worker processes of a local run: long-lived, one per core or GPU, each rendering many shards.

Workers are started with the ``spawn`` method (a clean interpreter: ``bpy`` is not fork-safe)
and import the renderer once. Each one ignores SIGINT, so Ctrl-C in a terminal reaches only
the parent, which sets the shared stop event; a thread in each worker mirrors it onto the
``threading.Event`` that ``run_shard`` watches, and the worker saves a checkpoint and returns.
Each worker is pinned to its own share of the CPU cores (and its own GPU when there are
GPUs), so N workers do not oversubscribe the machine. Per-sample progress goes to the
parent through a queue; the shard's outcome comes back as a plain dict.

Workers die with their parent: on Linux the kernel sends them SIGKILL when the parent dies
(``prctl(PR_SET_PDEATHSIG)``), elsewhere a thread in each worker sees its parent change and
exits. A ``kill -9`` of ``synthctl generate`` therefore never leaves workers rendering (and
committing) shards that a rerun would render again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import importlib
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_contract import plugins

RENDERER_GROUP = plugins.RENDERERS
"""Entry points naming a renderer ``module:function`` with ``run_shard``'s signature; ``blender`` is the default."""


def default_renderer(name: str = "blender") -> str:
    """``module:function`` of the renderer installed as ``name`` in group ``parallel_synth.renderers``."""
    from importlib.metadata import entry_points

    found = entry_points(group=RENDERER_GROUP, name=name)
    if not found:
        raise RuntimeError(f"no renderer {name!r} installed (entry point group {RENDERER_GROUP}): "
                           "install parallel-synth with its renderer (pip install 'parallel-synth[render]')")
    return str(next(iter(found)).value)


def gpu_count() -> int:
    """NVIDIA GPUs visible to this machine (0 when there is no driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """One worker per GPU when there are GPUs, else one per CPU core."""
    return gpu_count() or cpu_count()


def core_groups(cores: list[int], workers: int) -> list[list[int]]:
    """Split the usable cores into ``workers`` near-equal groups (cycled when workers > cores)."""
    if workers >= len(cores):
        return [[cores[i % len(cores)]] for i in range(workers)]
    base, extra = divmod(len(cores), workers)
    groups, at = [], 0
    for i in range(workers):
        n = base + (1 if i < extra else 0)
        groups.append(cores[at : at + n])
        at += n
    return groups


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker needs to know; pickled once per worker process at start."""

    renderer: str  # "module:function" with run_shard's signature
    spec_wire: dict[str, Any]
    dataset: str
    root_uri: str
    endpoint_url: str | None
    region: str | None
    workers: int
    gpus: int
    pin: bool = True
    cores_per_worker: int | None = None
    """Cores each worker is pinned to; default: the usable cores split evenly among the workers."""
    log_dir: str | None = None
    """Workers' stdout/stderr (Blender's own messages) go to ``worker-N.log`` here, not the terminal."""
    parent_pid: int | None = None
    """The process that started the workers: they exit when it is gone."""


_state: dict[str, Any] = {}


def _mirror(source: Any, target: threading.Event) -> None:
    source.wait()
    target.set()


PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 1.0


def _die_with_parent(parent_pid: int | None) -> None:
    """Arrange for this worker to end when ``parent_pid`` does (even by SIGKILL)."""
    if parent_pid is None:
        return
    armed = False
    if hasattr(os, "sched_getaffinity"):  # Linux: the kernel kills us when the parent dies
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _init_worker(config: WorkerConfig, stop: Any, events: Any, counter: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(config.parent_pid)
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    if config.log_dir is not None:
        _redirect_output(Path(config.log_dir) / f"worker-{slot}.log")
    if config.gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % config.gpus)
    elif config.pin and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        groups = config.workers
        if config.cores_per_worker:
            groups = max(groups, len(cores) // config.cores_per_worker)
        group = core_groups(cores, groups)[slot % groups]
        os.sched_setaffinity(0, group)
        os.environ["OMP_NUM_THREADS"] = str(len(group))
    # Import the renderer (and bpy) once per process, not once per shard.
    module, attr = config.renderer.split(":")
    run_shard = getattr(importlib.import_module(module), attr)
    from synth_contract.api import SynthDatasetSpec
    from synth_contract.store import open_store

    local_stop = threading.Event()
    threading.Thread(target=_mirror, args=(stop, local_stop), daemon=True).start()
    store = open_store(config.root_uri, endpoint_url=config.endpoint_url, region=config.region)
    _state.update(
        run_shard=run_shard,
        spec=SynthDatasetSpec.model_validate(config.spec_wire),
        config=config,
        stop=local_stop,
        events=events,
        store=store,
        slot=slot,
    )


OUTCOME_FIELDS = ("status", "samples", "seconds", "pass_rate", "render_seconds", "device", "reason", "resumed")
"""What the parent keeps of a ShardOutcome (not its manifest: per-sample lists stay in the worker)."""


def _redirect_output(path: Path) -> None:
    """Point file descriptors 1 and 2 at a log file (C libraries write there, not to sys.stdout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _outcome_dict(outcome: Any) -> dict[str, Any]:
    get = outcome.get if isinstance(outcome, dict) else (lambda k: getattr(outcome, k, None))
    out = {k: get(k) for k in OUTCOME_FIELDS if get(k) is not None}
    if out.get("status") == "failed" and str(out.get("reason", "")).startswith("quality"):
        out["retriable"] = False  # same seeds, same scores: rendering again cannot help
    return out


def render_one(shard: int) -> dict[str, Any]:
    """Run in a worker: render one shard; never raises (errors come back as ``status=failed``)."""
    events = _state["events"]

    def progress(event: dict[str, Any]) -> None:
        events.put({"shard": shard, "category": event.get("category", "?")})

    started = time.monotonic()
    try:
        outcome = _state["run_shard"](
            _state["spec"], _state["config"].dataset, shard,
            store=_state["store"],
            stop=_state["stop"], progress=progress,
        )
        out = _outcome_dict(outcome)
    except Exception as exc:  # a render or upload error: the parent retries the shard
        out = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc(limit=8),
               "retriable": type(exc).__name__ != "BadConfig"}
    out["shard"] = shard
    out["worker"] = _state["slot"]
    out.setdefault("seconds", time.monotonic() - started)
    return out


class WorkerPool:
    """A spawn-context process pool with a shared stop event and a progress queue."""

    def __init__(self, config: WorkerConfig) -> None:
        if config.parent_pid is None:
            config = dataclasses.replace(config, parent_pid=os.getpid())
        self.config = config
        self.ctx = mp.get_context("spawn")
        self.stop = self.ctx.Event()
        self.events = self.ctx.Queue()
        self._counter = self.ctx.Value("i", 0)
        self.executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.config.workers,
            mp_context=self.ctx,
            initializer=_init_worker,
            initargs=(self.config, self.stop, self.events, self._counter),
        )

    def restart(self) -> None:
        """Replace a broken pool (a worker died: out of memory, a crash in Blender)."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new_executor()

    def kill(self) -> None:
        """Second Ctrl-C: end the workers now (their checkpoints stay on disk)."""
        processes = list(getattr(self.executor, "_processes", {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=5)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.events.close()
        self.events.join_thread()
