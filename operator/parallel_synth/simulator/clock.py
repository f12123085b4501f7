"""The simulated clock: a heap of timed events, and the wall-clock time it stands for.

Events are pod starts and ends, preemptions, operator reconciles, quota changes and day
boundaries; at equal times they run in the order of their kind (pods end before a reconcile
looks at them). A pod event carries the pod's version: an event whose pod changed since
(deleted, preempted) is stale and skipped.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Any

# event kinds (ordered: at equal times, pods end before reconciles look at them)
END, PREEMPT, READY, DAY, TICK, FULL, QUICK, QUOTA, BATCH = range(9)


class Clock:
    """Simulated seconds since ``start``, and the events still to run."""

    def __init__(self, start: datetime) -> None:
        self.t0 = start.timestamp()
        self.t = 0.0
        self.heap: list[tuple[float, int, int, Any, int]] = []
        self._seq = 0

    def push(self, t: float, kind: int, obj: Any = None, version: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (t, kind, self._seq, obj, version))

    def pop(self) -> tuple[float, int, Any, int]:
        t, kind, _, obj, version = heapq.heappop(self.heap)
        return t, kind, obj, version

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t0 + self.t, tz=UTC)
