"""Curation decisions on a dataset's status: category progress per schedule segment.

Pure functions over the spec and committed shard spans (closed form, O(spans x segments x
categories)), so the operator can report per-segment balance of a 10^8-sample dataset on every
reconcile. Appending a schedule segment never changes the counts of the segments before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from synth_contract import planning, ranges
from synth_contract.api import SynthDatasetSpec


def segment_progress(spec: SynthDatasetSpec, done: Iterable[ranges.Span]) -> list[dict[str, Any]]:
    """Per schedule segment: ``{fromShard, toShard, categories: {name: {target, completed}}}``.

    ``done`` holds the committed global shard spans (inclusive).
    """
    spans = list(done)
    out = []
    for seg in planning.segment_targets(spec):
        completed: dict[str, int] = {}
        for a, b in spans:
            lo, hi = max(a, seg["fromShard"]), min(b + 1, seg["toShard"])
            if hi <= lo:
                continue
            start, stop = lo * spec.shard_size, min(hi * spec.shard_size, spec.samples)
            for name, n in planning.category_counts(spec, start, stop).items():
                completed[name] = completed.get(name, 0) + n
        out.append({"fromShard": seg["fromShard"], "toShard": seg["toShard"],
                    "categories": {c: {"target": t, "completed": completed.get(c, 0)}
                                   for c, t in seg["categories"].items()}})
    return out


def done_shards(folded_batches: Iterable[ranges.Span], shards_per_batch: int, total_shards: int,
                failed: Iterable[ranges.Span], live_done: Iterable[ranges.Span]) -> list[ranges.Span]:
    """Committed global shard spans: the shards of folded batches minus failed ones, plus live ones."""
    folded = [(a * shards_per_batch, min((b + 1) * shards_per_batch, total_shards) - 1) for a, b in folded_batches]
    return ranges.union(ranges.subtract(folded, failed), live_done)


def segment_counts(spec: SynthDatasetSpec, done: Iterable[ranges.Span]) -> dict[str, dict[str, int]]:
    """Committed samples per schedule segment (keyed by its ``fromShard``) and category, of the
    global shard spans ``done``: what a folded batch adds to ``status.folded.segments``."""
    return {str(seg["fromShard"]): {c: v["completed"] for c, v in seg["categories"].items() if v["completed"]}
            for seg in segment_progress(spec, done)}


def add_segments(a: dict[str, dict[str, int]], b: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out = {k: dict(v) for k, v in a.items()}
    for seg, cats in b.items():
        row = out.setdefault(seg, {})
        for c, n in cats.items():
            row[c] = row.get(c, 0) + n
    return out


def schedule_status(spec: SynthDatasetSpec, folded: dict[str, dict[str, int]],
                    live_done: Iterable[ranges.Span]) -> list[dict[str, Any]]:
    """``status.schedule``: per segment, targets and committed samples of folded batches (counted
    when they were folded, issue #22 item 10: never re-derived from the bounded failed-shards text)
    plus those of the live batches' committed shards."""
    live = segment_counts(spec, live_done)
    total = add_segments(folded, live)
    return [{"fromShard": seg["fromShard"], "toShard": seg["toShard"],
             "categories": {c: {"target": v["target"], "completed": total.get(str(seg["fromShard"]), {}).get(c, 0)}
                            for c, v in seg["categories"].items()}}
            for seg in segment_progress(spec, [])]

