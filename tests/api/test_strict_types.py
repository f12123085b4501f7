"""Strict types: what the API server refuses, the models refuse too, with a message naming the field.

Each case is checked on both sides: pydantic (``synthctl validate-manifest``, the operator) and
the generated CRD's OpenAPI schema (the API server), so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
import yaml
from builders import ROOT, with_field
from crd_schema import openapi_to_jsonschema

from synth_contract.api import SynthDataset
from synth_contract.validation import validate_document

NOW = datetime(2026, 11, 22, tzinfo=UTC)


@functools.cache
def _crd_validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((ROOT / "crds" / "parallelsynth.io_synthdatasets.yaml").read_text())
    return jsonschema.Draft7Validator(openapi_to_jsonschema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]))


def _crd_errors(doc: dict[str, Any]) -> set[str]:
    return {".".join(map(str, e.absolute_path)) for e in _crd_validator().iter_errors(doc)}


REFUSED = [
    # (field, value, words in the message)
    ("spec.samples", True, "true is not allowed: must be an integer"),
    ("spec.samples", "5", "'5' is not allowed: must be an integer"),
    ("spec.samples", 5.5, "must be an integer"),
    ("spec.suspend", 1, "1 is not allowed: must be true or false"),
    ("spec.suspend", "yes", "must be true or false"),
    ("spec.quality.minScore", "0.5", "must be a number"),
    ("spec.quality.minScore", False, "false is not allowed: must be a number"),
    ("spec.nodePool.cpu", "lots", "'lots' is not a Kubernetes cpu quantity"),
    ("spec.nodePool.cpu", "-2", "not a Kubernetes cpu quantity"),
    ("spec.nodePool.memory", "-5Zi", "'-5Zi' is not a Kubernetes memory quantity"),
    ("spec.nodePool.memory", "16 Gi", "not a Kubernetes memory quantity"),
]


@pytest.mark.parametrize(("field", "value", "words"), REFUSED, ids=[f"{f}={v!r}" for f, v, _ in REFUSED])
def test_models_and_crd_refuse_wrong_types(minimal: dict[str, Any], field: str, value: Any, words: str) -> None:
    doc = with_field(minimal, field, value)
    obj, errors = validate_document(doc, now=NOW)
    assert obj is None
    assert any(e.path == field and words in e.message for e in errors), [str(e) for e in errors]
    assert field in _crd_errors(doc)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_infinite_and_nan_numbers_are_refused(minimal: dict[str, Any], value: float) -> None:
    for field in ("spec.budget.maxDollars", "spec.quality.minScore", "spec.pricing.spotPerGpuHour"):
        obj, errors = validate_document(with_field(minimal, field, value), now=NOW)
        assert obj is None
        assert [e.message for e in errors if e.path == field] == [
            f"{'.nan' if math.isnan(value) else ('.inf' if value > 0 else '-.inf')} is not allowed: "
            "must be a finite number"]


def test_inf_from_yaml_never_reaches_dataset_json(minimal: dict[str, Any]) -> None:
    text = yaml.safe_dump(minimal).replace("samples: 100", "samples: 100\n  budget: {maxDollars: .inf}")
    obj, errors = validate_document(yaml.safe_load(text), now=NOW)
    assert obj is None and errors[0].path == "spec.budget.maxDollars"


ACCEPTED = [
    ("spec.quality.minScore", 1),  # an int where a number is expected: JSON from the API does this
    ("spec.pricing.spotPerGpuHour", 2),
    ("spec.budget.maxDollars", 100),
    ("spec.nodePool.cpu", "500m"),
    ("spec.nodePool.cpu", "2"),
    ("spec.nodePool.memory", "1.5Gi"),
    ("spec.nodePool.memory", "512M"),
    ("spec.nodePool.memory", "2e9"),
]


@pytest.mark.parametrize(("field", "value"), ACCEPTED, ids=[f"{f}={v!r}" for f, v in ACCEPTED])
def test_models_and_crd_accept_what_kubernetes_accepts(minimal: dict[str, Any], field: str, value: Any) -> None:
    doc = with_field(minimal, field, value)
    obj, errors = validate_document(doc, now=NOW)
    assert errors == [] and obj is not None
    assert field not in _crd_errors(doc)


def test_operator_reads_json_from_the_api(minimal: dict[str, Any]) -> None:
    """The operator validates what the API server returns: JSON, enums and times as strings, ints for floats."""
    minimal["spec"].update(render={"engine": "cycles", "device": "cpu"}, quality={"minScore": 1, "minPassRate": 0},
                           throughput={"deadline": "2099-01-01T00:00:00Z"})
    obj = SynthDataset.model_validate(json.loads(json.dumps(minimal)))
    assert obj.spec.quality.min_score == 1.0 and obj.spec.render.engine == "cycles"
    assert obj.spec.throughput.deadline is not None
