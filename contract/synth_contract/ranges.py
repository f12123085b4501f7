"""Compact integer ranges such as ``"0-41,43"``: the only way shard sets appear in status.

Job status reports ``completedIndexes``/``failedIndexes`` in this form, and so do our batch and
dataset statuses. Sets are kept as sorted, disjoint, non-adjacent ``(first, last)`` pairs, so a
set's size depends on how fragmented it is, never on how many numbers it holds. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable

Span = tuple[int, int]
"""An inclusive range ``(first, last)``."""


def parse(text: str | None) -> list[Span]:
    """Parse ``"0-41,43"`` into normalised spans; empty or None gives ``[]``."""
    spans: list[Span] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        a = int(first)
        b = int(last) if sep else a
        if b < a:
            raise ValueError(f"bad range {part!r}: {b} < {a}")
        spans.append((a, b))
    return normalise(spans)


def normalise(spans: Iterable[Span]) -> list[Span]:
    """Sort and merge overlapping or adjacent spans."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def format_spans(spans: Iterable[Span]) -> str:
    """Format spans as ``"0-41,43"`` (normalising first)."""
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in normalise(spans))


def union(*sets: Iterable[Span]) -> list[Span]:
    return normalise(s for spans in sets for s in spans)


def count(spans: Iterable[Span]) -> int:
    """How many integers the spans hold."""
    return sum(b - a + 1 for a, b in spans)


def shift(spans: Iterable[Span], offset: int) -> list[Span]:
    """Add ``offset`` to every number."""
    return [(a + offset, b + offset) for a, b in spans]


def clip(spans: Iterable[Span], first: int, last: int) -> list[Span]:
    """Only the numbers within ``[first, last]``."""
    out = []
    for a, b in spans:
        lo, hi = max(a, first), min(b, last)
        if lo <= hi:
            out.append((lo, hi))
    return out


def subtract(spans: Iterable[Span], removed: Iterable[Span]) -> list[Span]:
    """The numbers of ``spans`` that are not in ``removed``."""
    rem = normalise(removed)
    out: list[Span] = []
    for a, b in normalise(spans):
        cur = a
        for ra, rb in rem:
            if rb < cur or ra > b:
                continue
            if ra > cur:
                out.append((cur, ra - 1))
            cur = max(cur, rb + 1)
            if cur > b:
                break
        if cur <= b:
            out.append((cur, b))
    return out


def contains(spans: Iterable[Span], n: int) -> bool:
    return any(a <= n <= b for a, b in spans)


def bounded_text(spans: Iterable[Span], *, max_spans: int) -> str:
    """Format at most ``max_spans`` spans; the rest is summarised as ``"...(+N more)"``.

    Used where a status field must stay small however fragmented the set is; exact counts are
    kept in separate integer fields.
    """
    norm = normalise(spans)
    if len(norm) <= max_spans:
        return format_spans(norm)
    rest = count(norm[max_spans:])
    return f"{format_spans(norm[:max_spans])},...(+{rest} more)"


def parse_bounded(text: str | None) -> list[Span]:
    """Parse text written by :func:`bounded_text`, ignoring the summarised tail."""
    return parse(",".join(p for p in (text or "").split(",") if not p.startswith("...")))
