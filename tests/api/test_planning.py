"""The planner: the same shards, categories and seeds wherever a sample is rendered."""

from __future__ import annotations

import pytest
from builders import SMALL, spec

from synth_contract import layout, planning

PHASE1 = [{"name": "geometry", "weight": 2}, {"name": "materials", "weight": 3},
          {"name": "lighting", "weight": 3}, {"name": "camera", "weight": 2}]


def test_phase1_split_is_exact() -> None:
    s = spec(SMALL, samples=10_000_000, shardSize=1000, categories=PHASE1)
    assert planning.category_targets(s) == {
        "geometry": 2_000_000, "materials": 3_000_000, "lighting": 3_000_000, "camera": 2_000_000}
    assert planning.shard_count(s) == 10_000


@pytest.mark.parametrize("samples", [1, 7, 999, 1001, 123_457])
def test_targets_sum_to_samples(samples: int) -> None:
    s = spec(SMALL, samples=samples, shardSize=1)
    assert sum(planning.category_targets(s).values()) == samples


@pytest.mark.parametrize("stop", [10, 37, 500, 1000, 4321])
def test_any_prefix_is_balanced(stop: int) -> None:
    """A run stopped at any point holds each category in proportion (within one sample per block)."""
    s = spec(SMALL, samples=10_000, categories=PHASE1)
    counts = planning.category_counts(s, 0, stop)
    for c in PHASE1:
        expected = stop * c["weight"] / 10
        assert abs(counts[c["name"]] - expected) <= 1.0 + stop / planning.CATEGORY_BLOCK


def test_counts_agree_with_per_sample_categories() -> None:
    s = spec(SMALL, samples=3000, categories=PHASE1)
    brute: dict[str, int] = {}
    for i in range(1234, 2777):
        brute[planning.category_of(s, i)] = brute.get(planning.category_of(s, i), 0) + 1
    assert planning.category_counts(s, 1234, 2777) == brute


def test_category_rank_counts_earlier_samples_of_the_same_category() -> None:
    s = spec(SMALL, samples=3000, categories=PHASE1)
    seen: dict[str, int] = {}
    for i in range(2100):
        c = planning.category_of(s, i)
        assert planning.category_rank(s, i) == seen.get(c, 0)
        seen[c] = seen.get(c, 0) + 1


def test_seed_depends_only_on_seed_version_and_index() -> None:
    a = spec(SMALL, seed=5, shardSize=10)
    b = spec(SMALL, seed=5, shardSize=500, workers={"min": 0, "max": 50})
    assert [planning.sample_seed(a.seed, a.version, i) for i in range(50)] == [
        planning.sample_seed(b.seed, b.version, i) for i in range(50)]
    assert planning.sample_seed(5, "1", 3) != planning.sample_seed(5, "2", 3)
    assert planning.sample_seed(5, "1", 3) != planning.sample_seed(6, "1", 3)
    assert len({planning.sample_seed(5, "1", i) for i in range(10_000)}) == 10_000


def test_shards_tile_the_dataset_and_the_last_is_short() -> None:
    s = spec(SMALL, samples=1005, shardSize=100)
    ranges = [planning.shard_range(s, k) for k in range(planning.shard_count(s))]
    assert [len(r) for r in ranges] == [100] * 10 + [5]
    assert [i for r in ranges for i in r] == list(range(1005))
    assert all(planning.shard_of(s, i) == k for k, r in enumerate(ranges) for i in r)
    with pytest.raises(IndexError, match="out of range"):
        planning.shard_range(s, 11)


def test_batches_tile_the_shards() -> None:
    s = spec(SMALL, samples=100_000, shardSize=100, workers={"min": 0, "max": 3})
    per, total = planning.shards_per_batch(s), planning.shard_count(s)
    plans = [planning.batch_plan(b, shards_per_batch=per, total_shards=total) for b in range(planning.batch_count(s))]
    shards = [k for p in plans for k in range(p.shard_start, p.shard_start + p.shard_count)]
    assert shards == list(range(planning.shard_count(s)))


def test_resolution_tiers_follow_fractions() -> None:
    s = spec(SMALL, render={"resolutions": [{"width": 256, "height": 256, "fraction": 0.75},
                                     {"width": 1024, "height": 512, "fraction": 0.25}]})
    picks = [planning.resolution_of(s, planning.sample_seed(0, "1", i)) for i in range(4000)]
    share = picks.count((256, 256)) / len(picks)
    assert 0.72 < share < 0.78
    assert set(picks) == {(256, 256), (1024, 512)}


def test_keys_have_no_dots_and_sort_by_index() -> None:
    keys = [planning.sample_key(i) for i in (0, 9, 10, 499_999_999)]
    assert all("." not in k for k in keys)
    assert keys == sorted(keys)


def test_paths_follow_the_data_contract() -> None:
    assert layout.dataset_root("s3://b/p/", "ds", "3") == "s3://b/p/ds/v3"
    assert layout.shard_path(42) == "shards/00000042.tar"
    assert layout.manifest_path(42) == "manifests/00000042.json"
