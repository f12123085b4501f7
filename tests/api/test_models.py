"""The models accept every example and reject bad input with a message naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import EXAMPLES, load_example, with_field

from synth_contract import planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.validation import load_manifest_text, validate_document

NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_valid(path: Path) -> None:
    obj, errors = validate_document(load_example(path), now=NOW)
    assert errors == []
    assert obj is not None and obj.spec.samples > 0


def test_minimal_manifest_gets_working_defaults(minimal: dict[str, Any]) -> None:
    obj, errors = validate_document(minimal, now=NOW)
    assert errors == [] and obj is not None
    spec = obj.spec
    assert len(spec.categories) == 11
    assert spec.render.engine == "cycles" and spec.render.device == "auto"
    assert "rgb" in spec.render.passes
    assert spec.workers.min <= spec.workers.max
    assert sum(planning.category_targets(spec).values()) == 100


BAD: list[tuple[str, str, Any, str, str]] = [
    # (case, field to set, value, path expected in the error, words expected in the message)
    ("unknown category", "spec.categories", [{"name": "dragons", "weight": 1}], "spec.categories[0].name", "geometry"),
    ("weights sum to zero", "spec.categories", [{"name": "geometry", "weight": 0}], "spec.categories", "sum to zero"),
    ("repeated category", "spec.categories", [{"name": "camera"}, {"name": "camera"}], "spec.categories", "unique"),
    ("shardSize zero", "spec.shardSize", 0, "spec.shardSize", "greater than or equal to 1"),
    ("shardSize too large", "spec.shardSize", 10**6, "spec.shardSize", "less than or equal to 100000"),
    ("s3 uri without bucket", "spec.output.uri", "s3://", "spec.output.uri", "bucket"),
    ("relative file uri", "spec.output.uri", "file://data", "spec.output.uri", "file:///absolute/path"),
    ("http uri", "spec.output.uri", "http://x/y", "spec.output.uri", "s3://bucket/prefix"),
    ("min > max workers", "spec.workers", {"min": 5, "max": 2}, "spec.workers", "min (5) must be <= max (2)"),
    ("negative spot price", "spec.pricing.spotPerGpuHour", -1, "spec.pricing.spotPerGpuHour", ">= 0"),
    ("negative on-demand price", "spec.pricing.onDemandPerGpuHour", -0.5, "spec.pricing.onDemandPerGpuHour", ">= 0"),
    ("deadline in the past", "spec.throughput.deadline", "2020-01-01T00:00:00Z", "spec.throughput.deadline", "in the past"),
    ("unknown field", "spec.smaples", 5, "spec.smaples", "unknown field"),
    ("samples not a number", "spec.samples", "many", "spec.samples", "integer"),
    ("zero samples", "spec.samples", 0, "spec.samples", ">= 1"),
    ("bad engine", "spec.render.engine", "povray", "spec.render.engine", "cycles"),
    ("bad device", "spec.render.device", "tpu", "spec.render.device", "optix"),
    ("unknown pass", "spec.render.passes", ["rgb", "thermal"], "spec.render.passes[1]", "normals"),
    ("passes without rgb", "spec.render.passes", ["depth"], "spec.render.passes", "rgb"),
    ("spp min > max", "spec.render.samples", {"min": 64, "max": 8}, "spec.render.samples", "min (64) must be <= max (8)"),
    ("minScore above 1", "spec.quality.minScore", 1.5, "spec.quality.minScore", "<= 1"),
    ("negative budget", "spec.budget.maxDollars", -10, "spec.budget.maxDollars", ">= 0"),
    ("name not a DNS label", "metadata.name", "My_Dataset", "metadata.name", "DNS label"),
    ("version with slash", "spec.version", "1/2", "spec.version", "pattern"),
    ("missing image", "spec.image", None, "spec.image", "required"),
    ("library uri scheme", "spec.assets", {"libraries": [{"name": "a", "uri": "http://x/y"}]},
     "spec.assets.libraries[0].uri", "builtin:NAME"),
    ("library name repeated", "spec.assets",
     {"libraries": [{"name": "a", "uri": "file:///a"}, {"name": "a", "uri": "file:///b"}]},
     "spec.assets.libraries", "unique"),
    ("category names unknown library", "spec.categories", [{"name": "camera", "assets": {"libraries": ["zz"]}}],
     "spec", "categories[0].assets.libraries: unknown library 'zz'"),
    ("asset share above 1", "spec.categories", [{"name": "camera", "assets": {"libraries": ["a"], "share": 2}}],
     "spec.categories[0].assets.share", "<= 1"),
]


@pytest.mark.parametrize(("case", "field", "value", "path", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_field(
    minimal: dict[str, Any], case: str, field: str, value: Any, path: str, words: str
) -> None:
    if value is None:
        del minimal["spec"][field.split(".")[-1]]
    else:
        minimal = with_field(minimal, field, value)
    obj, errors = validate_document(minimal, now=NOW)
    assert obj is None, case
    rendered = [str(e) for e in errors]
    matching = [e for e in errors if e.path == path]
    assert matching, f"no error at {path}: {rendered}"
    text = " ".join(e.message for e in matching).replace("greater than or equal to ", ">= ")
    text = text.replace("less than or equal to ", "<= ")
    assert words.lower() in text.lower() or words in " ".join(rendered), rendered


def test_spec_roundtrips_through_wire_format(minimal: dict[str, Any]) -> None:
    spec = SynthDatasetSpec.model_validate(minimal["spec"])
    again = SynthDatasetSpec.model_validate(spec.wire())
    assert again == spec
    assert "shardSize" in spec.wire() and "shard_size" not in spec.wire()


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1,2]\nb: *x\n",  # aliases: the seed of a billion-laughs bomb
        "!!python/object/apply:os.system ['true']\n",
    ],
    ids=["alias", "python-tag"],
)
def test_hostile_yaml_is_refused(text: str) -> None:
    with pytest.raises(Exception, match=r"alias|constructor|could not determine"):
        load_manifest_text(text)


def test_oversized_manifest_is_refused() -> None:
    with pytest.raises(ValueError, match="larger than"):
        load_manifest_text("a: " + "x" * 2_000_000)
