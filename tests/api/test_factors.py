"""spec.schedule[].factors: the models and the CRD's CEL rules accept and refuse the same weights."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from builders import SMALL, manifest, wire
from cel_eval import cel_violations

from parallel_synth.commands import crds
from synth_contract import factors
from synth_contract.validation import validate_document

SCHEMA = crds.synthdataset_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CATS = [{"name": "lighting", "weight": 1}, {"name": "camera", "weight": 1}]


def _doc(factors: Any) -> dict[str, Any]:
    return manifest(wire(SMALL, categories=CATS, schedule=[{"fromShard": 3, "categories": CATS, "factors": factors}]))


GOOD = [
    {"lighting": {"kind": {"sun": 3, "point": 1}}},
    {"lighting": {"kind": {"sun": 0, "point": 1}, "strength": {"dim": 2.5}}, "camera": {"depthOfField": {"shallow": 4}}},
    {"lighting": {"kind": {"sun": 0, "point": 0, "area": 0}}},  # spot is left out: it weighs 1
    {},
]

BAD = [
    # (case, factors, words in the model's error, words in the CEL message)
    ("category not in the segment", {"geometry": {"shape": {"cube": 2}}}, "do not include 'geometry'",
     "one of the segment's categories"),
    ("unknown factor", {"lighting": {"colour": {"red": 2}}}, "unknown factor", "unknown factor for the category"),
    ("observed factor", {"lighting": {"environment": {"none": 2}}}, "observed only", "unknown factor for the category"),
    ("unknown value", {"lighting": {"kind": {"moon": 2}}}, "allowed: sun, point, area, spot", "unknown factor value"),
    ("all weights zero", {"lighting": {"kind": {"sun": 0, "point": 0, "area": 0, "spot": 0}}}, "sum to zero",
     "must not all be zero"),
]


@pytest.mark.parametrize("factors", GOOD, ids=range(len(GOOD)))
def test_good_weights_pass_both(factors: Any) -> None:
    obj, errors = validate_document(_doc(factors), now=NOW)
    assert obj is not None and not errors, errors
    assert cel_violations(SCHEMA, obj.wire()) == []


@pytest.mark.parametrize(("case", "factors", "model_words", "cel_words"), BAD, ids=[b[0] for b in BAD])
def test_bad_weights_are_refused_by_both(case: str, factors: Any, model_words: str, cel_words: str) -> None:
    obj, errors = validate_document(_doc(factors), now=NOW)
    assert obj is None, case
    text = " ".join(str(e) for e in errors)
    assert "spec.schedule[0]" in text and model_words in text, text
    doc = _doc(factors)
    assert any(cel_words in m for _, m in cel_violations(SCHEMA, doc)), case


@pytest.mark.parametrize("weight", [-1, "2", True, float("inf")])
def test_a_weight_must_be_a_finite_number_at_least_zero(weight: Any) -> None:
    obj, errors = validate_document(_doc({"lighting": {"kind": {"sun": weight}}}), now=NOW)
    assert obj is None
    assert any("spec.schedule[0].factors.lighting.kind.sun" in str(e) for e in errors), [str(e) for e in errors]


def test_the_crd_bounds_every_level_of_the_factors_map() -> None:
    node = SCHEMA["properties"]["spec"]["properties"]["schedule"]["items"]["properties"]["factors"]
    levels = []
    while node.get("type") == "object":
        levels.append(node.get("maxProperties"))
        node = node["additionalProperties"]
    assert levels == [11, factors.MAX_FACTORS, factors.MAX_VALUES] == [11, 5, 6]
    assert node["type"] == "number" and node["minimum"] == 0
