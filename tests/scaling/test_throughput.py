"""Measured throughput over a sliding window: robust to shards that commit in bursts."""

from __future__ import annotations

import random

import pytest

from parallel_synth.decisions.throughput import (
    Observation,
    RateWindow,
    measure,
    prior_per_worker_per_day,
    window_from_status,
    window_to_status,
)

DAY = 86400.0


def test_prior_before_any_observation() -> None:
    t = measure(RateWindow(), prior_gpu_seconds_per_sample=60.0)
    assert t.samples_per_day is None and not t.measured
    assert t.per_worker_per_day == pytest.approx(1440.0) == prior_per_worker_per_day(60.0)


def _fleet(workers: int, seconds_per_sample: float, shard: int, hours: float, *, tick: float = 60.0,
           seed: int = 0) -> RateWindow:
    """A fleet started at once: every pod commits a whole shard at the end of its render."""
    rng = random.Random(seed)
    ends = sorted(rng.uniform(0.8, 1.2) * shard * seconds_per_sample for _ in range(workers))
    pods = [(e, e) for e in ends]  # (next commit time, duration)
    samples, gpu, w, t = 0, 0.0, RateWindow(), 0.0
    while t <= hours * 3600:
        for i, (end, dur) in enumerate(pods):
            while end <= t:
                samples += shard
                gpu += dur
                dur = rng.uniform(0.8, 1.2) * shard * seconds_per_sample
                end += dur
            pods[i] = (end, dur)
        w = w.observe(Observation(t, samples, gpu, busy_seconds=workers * t * 1.0))
        t += tick
    return w


def test_per_worker_rate_is_right_despite_bursts() -> None:
    """75 pods, 1000-sample shards at 60 s: nothing commits for 13 hours, then bursts."""
    early = measure(_fleet(75, 60.0, 1000, 10), prior_gpu_seconds_per_sample=60.0)
    assert early.samples_per_day is None  # nothing committed yet: no made-up rate
    assert early.per_worker_per_day == pytest.approx(1440.0)  # the prior, not zero
    later = measure(_fleet(75, 60.0, 1000, 72), prior_gpu_seconds_per_sample=60.0)
    assert later.measured
    assert later.per_worker_per_day == pytest.approx(1440.0, rel=0.06)
    assert later.samples_per_day == pytest.approx(75 * 1440.0, rel=0.06)


def test_per_worker_rate_moves_away_from_a_wrong_prior() -> None:
    """The spec guessed 60 s per sample; the renders take 90 s."""
    t = measure(_fleet(20, 90.0, 100, 48), prior_gpu_seconds_per_sample=60.0)
    assert t.measured
    assert t.per_worker_per_day == pytest.approx(960.0, rel=0.05)


def test_window_stays_bounded_and_survives_the_status() -> None:
    w = _fleet(10, 1.0, 100, 24 * 7, tick=15.0)
    assert len(w.points) <= 2 * 24 * 3600 / w.resolution_seconds + 2
    back = window_from_status(window_to_status(w))
    assert len(back.points) == len(w.points)
    assert measure(back, prior_gpu_seconds_per_sample=1.0).per_worker_per_day == pytest.approx(
        measure(w, prior_gpu_seconds_per_sample=1.0).per_worker_per_day, rel=1e-3)


def test_counters_going_back_start_a_new_window() -> None:
    w = RateWindow().observe(Observation(0, 5000, 1e5)).observe(Observation(3600, 100, 10.0))
    assert [p.samples for p in w.points] == [100]
    assert window_from_status("garbage").points == ()
