"""RFC 3339 timestamps as the Kubernetes API writes them (``2026-01-01T00:00:00Z``).

One formatter and one parser for every part (operator status, Events, the simulator, the
renderer's manifests), so a time written by one is read back by another without surprises.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(t: datetime) -> str:
    """``t`` in UTC, to the second, with a ``Z`` suffix (naive times are taken as UTC)."""
    aware = t if t.tzinfo else t.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 text (``Z`` or an offset) as an aware datetime; None for empty or non-text input."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    if not isinstance(text, str) or not text:
        return None
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def epoch(text: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 text (None when absent)."""
    t = parse_time(text)
    return t.timestamp() if t is not None else None
