"""Per-segment category progress, and the balance a run stopped at any point keeps."""

from __future__ import annotations

import random

import builders
import pytest
from builders import SMALL, wire

from parallel_synth.decisions.curation import done_shards, segment_progress
from synth_contract import planning

CURATED = wire(
    SMALL, samples=50_000, shardSize=500, output={"uri": "s3://bucket-a/x"},
    categories=[{"name": "geometry", "weight": 3}, {"name": "fluids", "weight": 1}, {"name": "camera", "weight": 1}],
    schedule=[{"fromShard": 40, "categories": [{"name": "fluids", "weight": 1}, {"name": "effects", "weight": 1}]}],
)
"""Two segments: geometry-heavy shards 0-39, then fluids and effects."""


def test_segment_progress_counts_each_segment_against_its_own_targets() -> None:
    spec = builders.spec(CURATED)
    prog = segment_progress(spec, [(0, 9), (40, 44)])
    assert [(s["fromShard"], s["toShard"]) for s in prog] == [(0, 40), (40, 100)]
    first, second = prog
    assert first["categories"]["geometry"] == {"target": 12_000, "completed": 3_000}
    assert second["categories"] == {"fluids": {"target": 15_000, "completed": 1_250},
                                    "effects": {"target": 15_000, "completed": 1_250}}


def test_done_shards_are_folded_batches_minus_failures_plus_live_ones() -> None:
    assert done_shards([(0, 1)], 4, 10, [(2, 2)], [(9, 9)]) == [(0, 1), (3, 7), (9, 9)]


def test_appending_a_segment_leaves_earlier_progress_alone() -> None:
    before = segment_progress(builders.spec(CURATED, schedule=[]), [(0, 39)])
    after = segment_progress(builders.spec(CURATED), [(0, 39)])
    assert {c: v["completed"] for c, v in before[0]["categories"].items()} == \
        {c: v["completed"] for c, v in after[0]["categories"].items()}


@pytest.mark.parametrize("seed", range(5))
def test_a_run_stopped_at_any_point_is_balanced_within_one_shard_per_category(seed: int) -> None:
    """Shards are handed out in order and complete out of order (a window of in-flight ones); at any
    stop, each segment's categories are within one shard of their target share of what is done."""
    spec = builders.spec(CURATED)
    rng = random.Random(seed)
    total = planning.shard_count(spec)
    stop = rng.randrange(1, total)
    window = rng.randrange(1, 12)
    done = sorted(set(range(max(0, stop - window))) | set(rng.sample(range(max(0, stop - window), stop),
                                                                    k=min(window, stop) // 2)))
    spans = [(s, s) for s in done]
    for seg in segment_progress(spec, spans):
        cats = seg["categories"]
        got = sum(c["completed"] for c in cats.values())
        want = sum(c["target"] for c in cats.values())
        for c in cats.values():
            share = c["target"] / want
            assert abs(c["completed"] - share * got) <= spec.shard_size * share + 1
