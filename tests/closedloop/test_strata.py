"""Strata: each sample's factor values are the ones its generator drew, recorded in its JSON, balanced per shard.

A weighted schedule segment must give each factor value its share within every shard (by
construction, not on average), leave earlier shards untouched and stay reproducible; all of it is
checked at the planning/sampling level, with the fake renderer where the sample JSON is needed.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from builders import SMALL, spec
from fake_renderer import FakeRenderer

from synth_contract import factors, planning
from synth_contract.api import SynthDatasetSpec
from synth_render import sample, sampling, strata
from synth_render.generators import GENERATORS, GenConfig
from synth_render.sampling import r_sequence


def _thirds(lo: float, hi: float, names: tuple[str, str, str]) -> Callable[[float], str]:
    a, b = lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3
    return lambda x: names[0] if x < a else names[1] if x < b else names[2]


_LEVEL = ("low", "mid", "high")
_WORDS = ("zero", "one", "two", "three", "four")
# (category, factor, how to read the factor's value back from the generator's params)
CONSISTENCY: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = [
    ("geometry", "shape", lambda p: p["dominant"]),
    ("geometry", "count", lambda p: "few" if p["count"] < 4 else "some" if p["count"] < 6 else "many"),
    ("materials", "pattern", lambda p: p["pattern"]),
    ("materials", "material", lambda p: p["regime"]),
    ("lighting", "kind", lambda p: p["kind"]),
    ("lighting", "lights", lambda p: _WORDS[p["count"]]),
    ("lighting", "strength", lambda p: _thirds(-1.5, 1.5, ("dim", "medium", "bright"))(float(np.log2(p["gain"])))),
    ("camera", "depthOfField", lambda p: "sharp" if p["fstop"] == 0 else "shallow"),
    ("camera", "elevation", lambda p: _thirds(0.05, 1.35, _LEVEL)(p["elevation"])),
    ("composition", "layout", lambda p: p["layout"]),
    ("motion", "speed", lambda p: _thirds(0.05, 0.6, ("slow", "medium", "fast"))(p["speed"])),
    ("environment", "setting", lambda p: p["setting"]),
    ("characters", "figures", lambda p: _WORDS[p["count"]]),
    ("vehicles", "kind", lambda p: p["lead"]),
    ("vehicles", "count", lambda p: _WORDS[p["count"]]),
    ("fluids", "kind", lambda p: p["kind"]),
    ("effects", "effect", lambda p: p["effect"]),
    ("effects", "strength", lambda p: _thirds(0.0, 1.0, ("weak", "medium", "strong"))(p["strength"])),
]


@pytest.mark.parametrize(("category", "name", "read"), CONSISTENCY, ids=[f"{c}.{n}" for c, n, _ in CONSISTENCY])
def test_a_factor_value_is_the_value_the_generator_drew(category: str, name: str,
                                                         read: Callable[[dict[str, Any]], str]) -> None:
    f = factors.factor(category, name)
    assert f is not None
    seen = set()
    for rank in range(3 * len(f.values)):
        point = r_sequence(rank, shift=(0.013,) * 8)
        cfg = GenConfig(category=category, seed=100 + rank, rank=rank, strata=point)
        params = GENERATORS[category](cfg, np.random.default_rng(100 + rank)).params
        value = factors.values_of(category, point)[name]
        assert value == read(params), (rank, point[f.coord], params)
        seen.add(value)
    assert seen == set(f.values)  # every value reachable


def test_every_factor_of_the_catalogue_has_a_generator_and_distinct_values() -> None:
    assert set(factors.FACTORS) == set(GENERATORS)
    for cat, fs in factors.FACTORS.items():
        assert len({f.name for f in fs}) == len(fs), cat
        assert len({f.coord for f in fs}) == len(fs), cat  # two factors never share a coordinate
        for f in fs:
            assert len(set(f.values)) == len(f.values) and f.cuts()[0] == 0.0 and f.cuts()[-1] == 1.0


def _weighted(weights: dict[str, Any], *, samples: int = 600, category: str = "lighting") -> SynthDatasetSpec:
    cats = [{"name": category}]
    return spec(SMALL, samples=samples, shardSize=100, categories=cats,
                schedule=[{"fromShard": 2, "categories": cats, "factors": {category: weights}}])


def _shard_values(s: SynthDatasetSpec, shard: int, category: str = "lighting") -> list[dict[str, str]]:
    out = []
    for i in planning.shard_range(s, shard):
        plan = sample.plan_sample(s, i)
        out.append(strata.strata_of({"category": plan.category, "strataPoint": list(sample.strata_for(s, plan, 0))}))
    return out


def test_a_reweighted_segment_gives_each_value_its_share_in_every_shard() -> None:
    s = _weighted({"kind": {"sun": 6, "point": 2, "area": 1, "spot": 1}, "strength": {"dim": 3}})
    for shard in range(2, 6):
        rows = _shard_values(s, shard)
        kinds, strengths = Counter(r["kind"] for r in rows), Counter(r["strength"] for r in rows)
        # Shares 0.6/0.2/0.1/0.1 and 0.6/0.2/0.2: stratified, so within 2 of the target in every shard of 100
        # (independent draws would miss by about 5 for sun, two standard deviations).
        for value, target in {"sun": 60, "point": 20, "area": 10, "spot": 10}.items():
            assert abs(kinds[value] - target) <= 2, (shard, kinds)
        for value, target in {"dim": 60, "medium": 20, "bright": 20}.items():
            assert abs(strengths[value] - target) <= 2, (shard, strengths)
        lights = Counter(r["lights"] for r in rows)  # a factor the segment leaves alone keeps its natural shares
        assert all(abs(n - 25) <= 2 for n in lights.values()), lights


def test_shards_before_the_segment_keep_their_points_and_a_spec_renders_the_same_points_again() -> None:
    plain = spec(SMALL, samples=600, shardSize=100, categories=[{"name": "lighting"}])
    weighted = _weighted({"kind": {"sun": 9}})
    for i in (0, 57, 199):
        a, b = sample.plan_sample(plain, i), sample.plan_sample(weighted, i)
        assert sample.strata_for(plain, a, 0) == sample.strata_for(weighted, b, 0)
    again = _weighted({"kind": {"sun": 9}})
    assert _shard_values(weighted, 3) == _shard_values(again, 3)
    kinds = Counter(r["kind"] for r in _shard_values(weighted, 0))
    assert all(n == 25 for n in kinds.values())  # uniform shard: exactly a quarter each


def test_a_zero_weight_value_is_never_drawn_and_a_quality_rerender_follows_the_weights() -> None:
    s = _weighted({"kind": {"sun": 0, "point": 0, "area": 1, "spot": 1}})
    for i in planning.shard_range(s, 3):
        plan = sample.plan_sample(s, i)
        for attempt in (0, 1, 2):
            value = factors.values_of("lighting", sample.strata_for(s, plan, attempt))["kind"]
            assert value in ("area", "spot"), (i, attempt, value)


@pytest.mark.parametrize("weights", [{"sun": 1, "point": 1, "area": 1, "spot": 1}, {}])
def test_uniform_weights_are_the_identity(weights: dict[str, float]) -> None:
    f = factors.factor("lighting", "kind")
    assert f is not None
    for u in np.linspace(0, 0.999, 50):
        assert sampling.warp(f, float(u), weights) == pytest.approx(float(u), abs=1e-8)


def test_the_warp_is_monotone_and_lands_in_the_drawn_value() -> None:
    f = factors.factor("camera", "depthOfField")  # uneven intervals: sharp = [0, 0.6), shallow = [0.6, 1)
    assert f is not None
    us = np.linspace(0, 0.9999, 2001)
    warped = [sampling.warp(f, float(u), {"sharp": 1, "shallow": 3}) for u in us]
    assert all(b >= a for a, b in itertools.pairwise(warped))
    on = sum(f.value_of(round(w, 9)) == "shallow" for w in warped) / len(warped)
    assert on == pytest.approx(0.75, abs=0.002)


def test_the_sample_json_records_its_strata_and_the_index_reads_them() -> None:
    s = _weighted({"kind": {"sun": 6, "point": 2, "area": 1, "spot": 1}}, samples=300)
    rendered = sample.render_sample(s, sample.plan_sample(s, 250), FakeRenderer(), dataset="ds")
    recorded = rendered.meta["strata"]
    assert set(recorded) >= {f.name for f in factors.FACTORS["lighting"]} | {"environment"}
    assert recorded["kind"] == rendered.meta["params"]["kind"]
    assert recorded["lights"] == _WORDS[rendered.meta["params"]["count"]]
    assert strata.strata_of(rendered.meta) == recorded  # the same from the JSON alone


@pytest.mark.parametrize(("fractions", "level"), [([1.0, 0.95], "none"), ([0.7, 0.8], "partial"),
                                                  ([0.2, 0.5], "heavy"), ([], None)])
def test_occlusion_level_from_visible_fractions(fractions: list[float], level: str | None) -> None:
    objects: list[dict[str, Any]] = [{"id": i + 1, "visibleFraction": v} for i, v in enumerate(fractions)]
    objects.append({"id": 99, "visibleFraction": 0.0, "distractor": True})  # clutter does not count
    assert strata.occlusion_level(objects) == level
