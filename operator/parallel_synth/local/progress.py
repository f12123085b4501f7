"""Progress of a local run: a pure tracker of counts and rates, and two displays of it.

``Tracker`` turns worker events (one per committed sample, one per finished shard) into the
numbers a user wants: samples done, per-category progress, samples/min over a sliding window,
ETA and failures. Time is an argument, so tests drive it with a fake clock. ``LiveDisplay``
draws it with rich when stdout is a terminal; ``LineDisplay`` prints one plain line every few
seconds otherwise (CI logs, pipes), never control characters.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol

RATE_WINDOW_SECONDS = 120.0
"""samples/min is measured over this trailing window (so it follows the current pace)."""
POINT_SPACING_SECONDS = 1.0
"""Resolution of the rate window (bounds the tracker's memory whatever the sample rate)."""


@dataclass
class _InFlight:
    samples: int = 0
    categories: dict[str, int] = field(default_factory=dict)


@dataclass
class Tracker:
    """Counts of a run; every mutator takes ``now`` (seconds, monotonic)."""

    total_samples: int
    total_shards: int
    targets: dict[str, int]
    started: float
    committed_samples: int = 0
    committed_shards: int = 0
    skipped_shards: int = 0
    skipped_samples: int = 0
    failed_shards: int = 0
    retries: int = 0
    categories_done: dict[str, int] = field(default_factory=dict)
    _inflight: dict[int, _InFlight] = field(default_factory=dict)
    _points: deque[tuple[float, int]] = field(default_factory=deque)
    stopping: bool = False

    def __post_init__(self) -> None:
        self.categories_done = {c: self.categories_done.get(c, 0) for c in self.targets}
        self._points.append((self.started, 0))

    # ------------------------------------------------------------------ events
    def shard_already_committed(self, shard: int, categories: dict[str, int]) -> None:
        """A shard committed by an earlier run: counted as done, not as rendered now."""
        self.skipped_shards += 1
        self.skipped_samples += sum(categories.values())
        self._commit_counts(categories)

    def sample_done(self, shard: int, category: str, now: float) -> None:
        entry = self._inflight.setdefault(shard, _InFlight())
        entry.samples += 1
        entry.categories[category] = entry.categories.get(category, 0) + 1
        self._mark(now)

    def shard_done(self, shard: int, categories: dict[str, int], now: float) -> None:
        """A shard committed in this run; its exact counts replace the per-sample estimate."""
        self._inflight.pop(shard, None)
        self.committed_shards += 1
        self._commit_counts(categories)
        self._mark(now)

    def shard_lost(self, shard: int, *, why: Literal["retry", "failed", "interrupted"]) -> None:
        """A shard that stopped without committing: to be retried, out of retries, or stopped."""
        self._inflight.pop(shard, None)
        if why == "failed":
            self.failed_shards += 1
        elif why == "retry":
            self.retries += 1

    def _commit_counts(self, categories: dict[str, int]) -> None:
        for c, n in categories.items():
            self.categories_done[c] = self.categories_done.get(c, 0) + n
            self.committed_samples += n

    def _mark(self, now: float) -> None:
        # One point per POINT_SPACING seconds at most: the window stays O(window / spacing).
        if now - self._points[-1][0] >= POINT_SPACING_SECONDS:
            self._points.append((now, self.rendered_samples))
        while len(self._points) > 2 and now - self._points[1][0] > RATE_WINDOW_SECONDS:
            self._points.popleft()

    # ------------------------------------------------------------------ views
    @property
    def rendered_samples(self) -> int:
        """Samples rendered by this run (committed or in flight), not counting earlier runs."""
        return self.committed_samples - self.skipped_samples + sum(e.samples for e in self._inflight.values())

    @property
    def done_samples(self) -> int:
        return self.committed_samples + sum(e.samples for e in self._inflight.values())

    def category_done(self, name: str) -> int:
        return self.categories_done.get(name, 0) + sum(
            e.categories.get(name, 0) for e in self._inflight.values()
        )

    def samples_per_minute(self, now: float) -> float:
        t0, n0 = self._points[0]
        elapsed = now - t0
        if elapsed <= 0:
            return 0.0
        return (self.rendered_samples - n0) / elapsed * 60

    def eta_seconds(self, now: float) -> float | None:
        rate = self.samples_per_minute(now)
        if rate <= 0:
            return None
        return (self.total_samples - self.done_samples) / rate * 60

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "samples": self.done_samples,
            "total": self.total_samples,
            "shards": self.committed_shards + self.skipped_shards,
            "totalShards": self.total_shards,
            "failedShards": self.failed_shards,
            "retries": self.retries,
            "samplesPerMinute": self.samples_per_minute(now),
            "etaSeconds": self.eta_seconds(now),
            "elapsedSeconds": now - self.started,
            "categories": {c: {"done": self.category_done(c), "target": t} for c, t in self.targets.items()},
            "stopping": self.stopping,
        }


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def summary_line(snap: dict[str, Any]) -> str:
    """One plain line: what ``LineDisplay`` prints and what the live view shows on top."""
    total = snap["total"] or 1
    line = (
        f"{snap['samples']:,}/{snap['total']:,} samples ({100 * snap['samples'] / total:.0f}%)"
        f" | shards {snap['shards']}/{snap['totalShards']}"
        f" | {snap['samplesPerMinute']:.1f} samples/min"
        f" | ETA {format_duration(snap['etaSeconds'])}"
        f" | failures {snap['failedShards']}"
    )
    if snap["retries"]:
        line += f" (retries {snap['retries']})"
    if snap["stopping"]:
        line += " | stopping: workers are saving checkpoints"
    return line


class Display(Protocol):
    def update(self, snap: dict[str, Any], *, force: bool = False) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class LineDisplay:
    """Plain progress lines for logs: one every ``interval`` seconds, and on demand."""

    def __init__(self, out: IO[str], *, interval: float = 5.0, clock: Any = None) -> None:
        import time

        self.out = out
        self.interval = interval
        self.clock = clock or time.monotonic
        self._last = -1e18

    def update(self, snap: dict[str, Any], *, force: bool = False) -> None:
        now = self.clock()
        if force or now - self._last >= self.interval:
            self._last = now
            cats = " ".join(f"{c}={v['done']}/{v['target']}" for c, v in snap["categories"].items())
            print(f"[{format_duration(snap['elapsedSeconds']):>7}] {summary_line(snap)} | {cats}",
                  file=self.out, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def close(self) -> None:
        pass


class LiveDisplay:
    """A rich live panel: overall bar, one bar per category, rate, ETA and failures."""

    def __init__(self, title: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.title = title
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def _render(self, snap: dict[str, Any]) -> Any:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", style="bold")
        table.add_column(width=40)
        table.add_column(justify="right")
        table.add_row("all", ProgressBar(total=max(snap["total"], 1), completed=snap["samples"]),
                      f"{snap['samples']:,}/{snap['total']:,}")
        for name, v in snap["categories"].items():
            table.add_row(name, ProgressBar(total=max(v["target"], 1), completed=v["done"]),
                          f"{v['done']:,}/{v['target']:,}")
        outer = Table.grid()
        outer.add_row(table)
        outer.add_row(summary_line(snap))
        return Panel(outer, title=self.title, border_style="yellow" if snap["stopping"] else "blue")

    def update(self, snap: dict[str, Any], *, force: bool = False) -> None:
        self.live.update(self._render(snap), refresh=force)

    def message(self, text: str) -> None:
        self.live.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self.live.stop()
