"""``synthctl generate``: render a whole dataset on this machine, resumably.

The planner cuts the dataset into shards; shards already committed (their manifest exists)
are skipped, the rest go to the worker pool in index order through a bounded in-flight
window, so the parent holds O(workers) shard objects whatever the dataset's size and a run
stopped at any point has a balanced prefix. A shard that fails is retried up to
``spec.retry.perShard`` times. Ctrl-C (or SIGTERM) sets the stop event: workers checkpoint
and return, and the next run picks up where this one stopped. When every shard is committed,
the index and ``dataset.json`` are written.
"""

from __future__ import annotations

import queue
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from parallel_synth.local.pool import WorkerConfig, WorkerPool, default_renderer, render_one
from parallel_synth.local.progress import Display, Tracker
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import Store

POLL_SECONDS = 0.25
"""How often the parent drains progress events and redraws while waiting for shards."""


@dataclass
class RunResult:
    """How a run ended."""

    status: str  # "complete", "interrupted", "failed"
    rendered_shards: int = 0
    skipped_shards: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (shard, last error), bounded
    seconds: float = 0.0
    signal: int | None = None  # the signal that stopped the run (SIGINT or SIGTERM)
    aborted: str | None = None  # why the run gave up (workers that cannot start)
    checkpointed_samples: int = 0  # samples saved in checkpoints by shards stopped mid-way
    resumed_samples: int = 0  # samples taken over from earlier checkpoints


MAX_REPORTED_FAILURES = 50
MAX_POOL_BREAKS = 3
COMMITTED = frozenset({"committed", "skipped", "already_committed", "already-committed"})
INTERRUPTED = frozenset({"interrupted", "stopped"})


def pending_shards(files: Store, total: int, on_committed: Callable[[int], None]) -> Iterator[int]:
    """Shards still to render, in index order; committed ones are reported, not yielded.

    Lazy: one existence check per shard as the window advances, never a list of shards.
    """
    for shard in range(total):
        if files.exists(layout.manifest_path(shard)):
            on_committed(shard)
        else:
            yield shard


class _Signals:
    """First SIGINT/SIGTERM: stop gracefully. Second: stop now."""

    def __init__(self, on_first: Callable[[], None]) -> None:
        self.count = 0
        self.first: int | None = None
        self.on_first = on_first
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            self.first = signum
            self.on_first()
        else:
            raise KeyboardInterrupt

    def __enter__(self) -> _Signals:
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def run_dataset(
    spec: SynthDatasetSpec,
    dataset: str,
    files: Store,
    display: Display,
    *,
    workers: int,
    gpus: int = 0,
    renderer: str | None = None,
    window: int | None = None,
    log_dir: str | None = None,
    cores_per_worker: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Render every shard not yet committed; returns when all are done, failed or stopped."""
    total = planning.shard_count(spec)
    started = clock()
    tracker = Tracker(
        total_samples=spec.samples, total_shards=total,
        targets=planning.category_targets(spec), started=started,
    )
    result = RunResult(status="complete")

    def shard_categories(shard: int) -> dict[str, int]:
        r = planning.shard_range(spec, shard)
        return planning.category_counts(spec, r.start, r.stop)

    todo = pending_shards(files, total, lambda s: tracker.shard_already_committed(s, shard_categories(s)))
    config = WorkerConfig(
        renderer=renderer or default_renderer(), spec_wire=spec.wire(), dataset=dataset, root_uri=files.uri,
        endpoint_url=spec.output.endpoint_url, region=spec.output.region, workers=workers, gpus=gpus,
        log_dir=log_dir, cores_per_worker=cores_per_worker,
    )
    limit = window or 2 * workers
    retry: deque[int] = deque()
    attempts: dict[int, int] = {}  # only shards that failed at least once and are not done yet
    inflight: dict[Future[dict[str, Any]], int] = {}
    breaks = [0]  # consecutive pool breaks without a committed shard
    pool = WorkerPool(config)

    def begin_stop() -> None:
        tracker.stopping = True
        pool.stop.set()
        display.message("stopping: workers are saving checkpoints (Ctrl-C again to stop at once)")

    def next_shard() -> int | None:
        if retry:
            return retry.popleft()
        return next(todo, None)

    def drain_events() -> None:
        now = clock()
        while True:
            try:
                ev = pool.events.get_nowait()
            except queue.Empty:
                return
            # An event can trail its shard's result (the queue and the result pipe are separate):
            # count only shards still in flight, so a committed shard is never counted twice.
            if ev["shard"] in inflight.values():
                tracker.sample_done(ev["shard"], ev["category"], now)

    def failed(shard: int, error: str, *, retriable: bool = True) -> None:
        n = attempts.get(shard, 0) + 1
        if retriable and n <= spec.retry.per_shard and not tracker.stopping:
            attempts[shard] = n
            retry.append(shard)
            tracker.shard_lost(shard, why="retry")
            display.message(f"shard {shard}: {error} (retry {n}/{spec.retry.per_shard})")
        else:
            attempts.pop(shard, None)
            tracker.shard_lost(shard, why="failed")
            if len(result.failed) < MAX_REPORTED_FAILURES:
                result.failed.append((shard, error))
            display.message(f"shard {shard} failed: {error}")

    def finished(out: dict[str, Any], shard: int) -> None:
        status = str(out.get("status", "failed"))
        if status in COMMITTED:
            breaks[0] = 0
            result.resumed_samples += int(out.get("resumed") or 0)
            attempts.pop(shard, None)
            tracker.shard_done(shard, shard_categories(shard), clock())
            result.rendered_shards += 1
        elif status in INTERRUPTED:
            result.checkpointed_samples += int(out.get("samples") or 0)
            tracker.shard_lost(shard, why="interrupted")
        else:
            failed(shard, str(out.get("reason") or f"status {status}"), retriable=bool(out.get("retriable", True)))

    def collect(done: set[Future[dict[str, Any]]]) -> None:
        lost: list[int] = []
        for fut in done:
            shard = inflight.pop(fut)
            try:
                out = fut.result()
            except BrokenProcessPool:
                lost.append(shard)
                continue
            except Exception as exc:  # e.g. an unpicklable outcome
                failed(shard, f"{type(exc).__name__}: {exc}")
                continue
            finished(out, shard)
        if lost:
            # One dead worker breaks the whole executor: every shard in flight is lost.
            lost += inflight.values()
            inflight.clear()
            breaks[0] += 1
            if breaks[0] >= MAX_POOL_BREAKS:
                # Workers die before finishing anything: a start-up problem (import, memory),
                # not a shard's. Stop instead of burning every shard's retries.
                tracker.stopping = True
                result.aborted = (f"worker processes died {breaks[0]} times in a row without committing a shard; "
                                  f"see the worker logs{f' in {log_dir}' if log_dir else ''}")
                for s in sorted(lost):
                    tracker.shard_lost(s, why="interrupted")
                return
            display.message("a worker process died; restarting the pool")
            pool.restart()
            for s in sorted(lost):
                failed(s, "worker process died")

    try:
        with _Signals(begin_stop) as signals:
            while True:
                while not tracker.stopping and len(inflight) < limit:
                    shard = next_shard()
                    if shard is None:
                        break
                    inflight[pool.executor.submit(render_one, shard)] = shard
                if not inflight:
                    break
                done, _ = wait(list(inflight), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                drain_events()
                collect(done)
                display.update(tracker.snapshot(clock()))
            drain_events()
        result.signal = signals.first
    except KeyboardInterrupt:
        result.signal = signal.SIGINT
        tracker.stopping = True
        pool.kill()
        result.status = "interrupted"
    else:
        pool.close()
    display.update(tracker.snapshot(clock()), force=True)
    result.skipped_shards = tracker.skipped_shards
    result.seconds = clock() - started
    if result.aborted:
        result.status = "failed"
    elif result.status != "interrupted":
        if tracker.stopping:
            result.status = "interrupted"
        elif tracker.failed_shards:
            result.status = "failed"
    return result
