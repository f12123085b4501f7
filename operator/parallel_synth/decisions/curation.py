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
