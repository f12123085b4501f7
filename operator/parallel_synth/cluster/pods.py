"""Pods that vanish between two batch ticks, remembered from a watch (reliability finding 6).

The batch timer counts preemptions and GPU time from the pods it lists. A pod lost with its node
(or cut off from the control plane) is marked ``DisruptionTarget`` and Failed, counted by the Job
controller (ignored by the podFailurePolicy: the Job's ``failed`` never shows it) and removed
within a second: usually before the next tick can list it, so it was never counted. The operator
therefore also watches its rendering pods (a server-side label selector: only pods it created)
and remembers the last state of each pod that matters for accounting, disrupted
(``DisruptionTarget`` or a node-loss reason) or deleted after it ended, until a tick of its batch has
written it into the batch status. The batch's bounded ledgers (``preemptedPods``,
``finishedPods``) keep counting each pod once by name, whether a tick listed it, got it from here,
or both (``decisions.status.unlisted`` never hands a tick a pod it also listed).

Memory: an entry goes once a tick of its batch has written it (:meth:`PodMemory.forget` keeps
entries updated meanwhile), or after ``ttl`` seconds (the batch finished meanwhile, the index
Job's pods); at most ``limit`` entries, oldest dropped first. Nothing is persisted: a pod lost in
the seconds before an operator restart is still missed, as before. Each event is parsed once
into :class:`~parallel_synth.decisions.facts.PodFacts` (the entry keeps the facts, not the pod's
dict with its whole spec), and costs O(1) amortised: expiry and the size bound pop the oldest
entries from one queue in record order instead of scanning every remembered pod.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parallel_synth.cluster.observe import pod_facts
from parallel_synth.decisions.facts import PodFacts
from synth_contract.api import LABEL_BATCH, LABEL_MANAGED_BY, MANAGED_BY

LABEL_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_BATCH}"
"""The operator's pods (what the batch timer lists): the only pods the watch receives."""

BatchKey = tuple[str, str]
"""(namespace, RenderBatch name)."""


def worth_remembering(event_type: str | None, facts: PodFacts) -> bool:
    """A pod whose state the batch status must not lose: disrupted, or deleted after it ended."""
    return facts.preempted_at is not None or (event_type == "DELETED" and facts.terminal)


def batch_of(pod: Mapping[str, Any]) -> BatchKey | None:
    meta = pod.get("metadata") or {}
    batch = (meta.get("labels") or {}).get(LABEL_BATCH)
    return (str(meta.get("namespace") or ""), str(batch)) if batch else None


@dataclass(frozen=True)
class Taken:
    """What a tick got for one batch: the pods and the version of each entry when taken."""

    batch: BatchKey
    pods: tuple[PodFacts, ...] = ()
    versions: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class _Entry:
    seq: int
    at: float
    pod: PodFacts


class PodMemory:
    """The last accounting-relevant state of watched pods, per batch, until a tick has used it."""

    def __init__(self, *, ttl: float = 3600.0, limit: int = 10_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._batches: dict[BatchKey, dict[str, _Entry]] = {}
        self._order: collections.deque[tuple[int, float, BatchKey, str]] = collections.deque()
        """(seq, at, batch, uid) in record order; an item whose entry was replaced or removed is stale."""
        self._size = 0
        self._seq = itertools.count(1)

    def __len__(self) -> int:
        return self._size

    def record(self, event_type: str | None, pod: Mapping[str, Any], *, now: float) -> bool:
        """Remember ``pod`` if it matters (True); drop expired entries."""
        self._expire(now)
        key = batch_of(pod)
        if key is None:
            return False
        facts = pod_facts(pod)  # parsed once per event
        if not worth_remembering(event_type, facts):
            return False
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or meta.get("name") or "")
        entries = self._batches.setdefault(key, {})
        if uid not in entries:
            self._size += 1
        seq = next(self._seq)
        entries[uid] = _Entry(seq, now, facts)
        self._order.append((seq, now, key, uid))
        while self._size > self.limit:
            self._pop_oldest()
        if len(self._order) > 2 * self._size + 64:  # replaced entries left stale items: compact
            self._order = collections.deque(item for item in self._order if self._current(item))
        return True

    def take(self, namespace: str, batch: str) -> Taken:
        """The remembered pods of one batch (they stay until :meth:`forget`)."""
        key = (namespace, batch)
        entries = self._batches.get(key, {})
        return Taken(key, tuple(e.pod for e in entries.values()),
                     tuple((uid, e.seq) for uid, e in entries.items()))

    def forget(self, taken: Taken) -> None:
        """Drop what a tick has written; an entry recorded again since is kept."""
        entries = self._batches.get(taken.batch)
        if entries is None:
            return
        for uid, seq in taken.versions:
            if uid in entries and entries[uid].seq == seq:
                self._remove(taken.batch, uid)

    def _current(self, item: tuple[int, float, BatchKey, str]) -> bool:
        seq, _, key, uid = item
        entry = self._batches.get(key, {}).get(uid)
        return entry is not None and entry.seq == seq

    def _remove(self, key: BatchKey, uid: str) -> None:
        entries = self._batches[key]
        del entries[uid]
        self._size -= 1
        if not entries:
            del self._batches[key]

    def _pop_oldest(self) -> None:
        while self._order:
            item = self._order.popleft()
            if self._current(item):
                self._remove(item[2], item[3])
                return

    def _expire(self, now: float) -> None:
        while self._order and now - self._order[0][1] > self.ttl:
            item = self._order.popleft()
            if self._current(item):
                self._remove(item[2], item[3])
