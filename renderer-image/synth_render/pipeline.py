"""The pipelined worker: Blender renders sample N while Python finishes N-1 and prepares N+1.

Only the main thread touches ``bpy``. Each sample runs ``sample.render_sample`` (the same code
``synthctl render-sample`` runs, so the same bytes) on a small thread pool with a
:class:`MainThreadRenderer` in place of the renderer: its ``render`` call is handed to the main
thread and waited for. The main thread does nothing but execute those calls, one after the
other (:func:`run`), so that while Cycles renders one sample (the render call releases the GIL),
the other threads generate the next scene and encode, gate, caption and append the previous one.

Samples are appended to the shard in index order (each waits for the one before it), at most
``depth`` are in flight (back-pressure: the main thread waits when the finishing side is slower),
one pool thread runs Python at a time (the others wait for their render or their turn), and a
failure in any stage stops the pipeline and is raised on the main thread as before.

The main thread's time is accounted in :class:`Timings`: seconds inside Cycles' render calls,
the other seconds of the main thread (scene build, EXR read-back, ground-truth renders), and the
seconds it waited for the pipeline. ``render_busy_ratio`` is the first over their sum.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from synth_render.rendering import Renderer, RenderOutput

DEPTH = 3
"""Samples in flight: one rendering, one finishing, one whose scene is being generated."""


@dataclass
class Timings:
    """Where the main thread's time went (seconds)."""

    render: float = 0.0
    """Inside Cycles' render calls of the samples (main render, extra views and frames)."""
    other: float = 0.0
    """The rest of the main thread's work: scene build and clean-up, EXR read-back, ground-truth renders."""
    wait: float = 0.0
    """Idle, waiting for the pipeline (scene generation, encoding, the tar) to hand it work."""

    @property
    def busy_ratio(self) -> float:
        total = self.render + self.other + self.wait
        return self.render / total if total > 0 else 0.0

    def as_json(self) -> dict[str, float]:
        return {"renderCallSeconds": round(self.render, 3), "mainThreadOtherSeconds": round(self.other, 3),
                "pipelineWaitSeconds": round(self.wait, 3), "renderBusyRatio": round(self.busy_ratio, 4)}


def render_call_seconds(out: RenderOutput) -> float:
    """The seconds of a render's Cycles calls (view 0 and every extra view and frame)."""
    extra = (*getattr(out, "views", ()), *getattr(out, "frames", ()))
    return float(out.render_seconds) + sum(float(v.render_seconds) for v in extra)


class Aborted(RuntimeError):
    """The pipeline stopped because an earlier stage failed."""


class MainThreadRenderer:
    """A :class:`Renderer` whose ``render`` runs on the main thread (the only thread allowed in ``bpy``).

    ``make`` creates the real renderer (on the main thread, at the first render). Attributes other
    than ``render`` (``device``, ``engine_version``, ``assets_rejected``) are read from it.
    """

    def __init__(self, make: Callable[[], Renderer], inbox: queue.SimpleQueue[Any]) -> None:
        self._make = make
        self._inbox = inbox
        self.real: Renderer | None = None
        self.python = threading.Lock()
        """Held by the one pool thread running Python at a time (released while it waits for a render):
        the scene generators and their libraries (PyBullet's one client, caches) need not be thread-safe,
        and under the GIL a second Python thread would gain little."""

    def render(self, scene: Any, **kwargs: Any) -> RenderOutput:
        fut: Future[RenderOutput] = Future()
        self._inbox.put(("render", (scene, kwargs), fut))
        self.python.release()
        try:
            return fut.result()
        finally:
            self.python.acquire()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self.real is None:
            raise AttributeError(name)
        return getattr(self.real, name)

    def execute(self, scene: Any, kwargs: dict[str, Any]) -> RenderOutput:
        """Run one render (main thread only)."""
        if self.real is None:
            # Importing bpy drops the GIL inside dlopen (USD's type registry) and waits to get it back;
            # a pool thread taking the GIL then and loading a library itself (import pybullet, cv2,
            # ctypes) waits for the loader lock bpy's dlopen holds: both wait forever (seen: the
            # quickstart stuck at 100/110). No pool thread runs Python while the renderer is made.
            with self.python:
                self.real = self._make()
        return self.real.render(scene, **kwargs)


@dataclass
class Task:
    """One sample of the pipeline: ``work`` runs on a pool thread, ``commit`` after its predecessor's."""

    work: Callable[[], Any]
    commit: Callable[[Any], None]


def run(tasks: Iterator[Task], proxy: MainThreadRenderer, inbox: queue.SimpleQueue[Any], *,
        stop: threading.Event, timings: Timings, depth: int = DEPTH) -> None:
    """Run ``tasks`` in order with at most ``depth`` in flight; the calling (main) thread serves renders.

    ``commit`` of each task runs on its pool thread after the previous task's commit, so commits
    happen in order. Once ``stop`` is set no task starts its work (a task that had not started is
    skipped, and so is every later one); the ones already working finish and commit. After a
    failure no new task starts, the render requests still coming are refused, and once every
    task in flight has ended the failure of the earliest task is raised here.
    """
    failed: list[tuple[int, BaseException]] = []
    abort = threading.Event()
    in_flight = seq = 0
    previous: threading.Event | None = None
    exhausted = False

    cut = threading.Event()  # a task skipped after a stop request: the ones after it skip too (order)

    def body(task: Task, before: threading.Event | None, done: threading.Event) -> None:
        try:
            if stop.is_set():
                cut.set()
                return
            with proxy.python:
                result = task.work()
            if before is not None:
                before.wait()
            if abort.is_set():
                raise Aborted("an earlier sample failed")
            if cut.is_set():
                return
            with proxy.python:
                task.commit(result)
        except BaseException:
            abort.set()
            raise
        finally:
            done.set()

    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="sample") as pool:
        while True:
            while not exhausted and in_flight < depth and not stop.is_set() and not abort.is_set():
                try:
                    task = next(tasks, None)
                except Exception as exc:  # planning the next task failed: end the ones in flight first
                    failed.append((seq, exc))
                    abort.set()
                    break
                if task is None:
                    exhausted = True
                    break
                done = threading.Event()
                pool.submit(body, task, previous, done).add_done_callback(partial(_finished, inbox, seq))
                previous, in_flight, seq = done, in_flight + 1, seq + 1
            if in_flight == 0:
                break
            t0 = time.perf_counter()
            kind, payload, fut = inbox.get()
            timings.wait += time.perf_counter() - t0
            if kind == "done":
                in_flight -= 1
                error = fut.exception()
                if error is not None and not isinstance(error, Aborted):
                    failed.append((payload, error))
                continue
            _serve(proxy, payload, fut, timings, abort)
    if failed:
        raise min(failed, key=lambda f: f[0])[1]


def _finished(inbox: queue.SimpleQueue[Any], seq: int, fut: Future[None]) -> None:
    inbox.put(("done", seq, fut))


def _serve(proxy: MainThreadRenderer, payload: tuple[Any, dict[str, Any]], fut: Future[Any], timings: Timings,
           abort: threading.Event) -> None:
    if abort.is_set():
        fut.set_exception(Aborted("an earlier sample failed"))
        return
    t0 = time.perf_counter()
    try:
        out = proxy.execute(*payload)
    except BaseException as exc:
        timings.other += time.perf_counter() - t0
        fut.set_exception(exc)
        return
    total = time.perf_counter() - t0
    call = min(render_call_seconds(out), total)
    timings.render += call
    timings.other += total - call
    fut.set_result(out)
