"""The CRDs: generated from the models, structural, CEL rules that behave, examples that fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from builders import EXAMPLES, ROOT, load_example
from cel_eval import cel_violations, preserve_unknown_paths, structural_problems
from crd_schema import openapi_to_jsonschema

from parallel_synth.commands import crds

CRDS = crds.all_crds()


def _schema(plural: str) -> dict[str, Any]:
    crd = next(c for c in CRDS.values() if c["spec"]["names"]["plural"] == plural)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("name", sorted(CRDS))
def test_crds_folder_matches_the_models(name: str) -> None:
    on_disk = (ROOT / "crds" / name).read_text()
    assert on_disk == crds.render_yaml(CRDS[name]), "crds/ drifted: run `make crds`"


def test_no_stray_files_in_crds_folder() -> None:
    assert sorted(p.name for p in (ROOT / "crds").glob("*.yaml")) == sorted(CRDS)


@pytest.mark.parametrize("plural", ["synthdatasets", "renderbatches"])
def test_crd_is_structural(plural: str) -> None:
    schema = _schema(plural)
    assert structural_problems(schema) == []
    assert preserve_unknown_paths(schema) == []


@pytest.mark.parametrize("plural", ["synthdatasets", "renderbatches"])
def test_crd_names_and_status_subresource(plural: str) -> None:
    crd = next(c for c in CRDS.values() if c["spec"]["names"]["plural"] == plural)
    names = crd["spec"]["names"]
    assert names["categories"] == ["synth"]
    assert names["shortNames"] == [{"synthdatasets": "sds", "renderbatches": "rb"}[plural]]
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_printer_columns_show_what_users_look_for() -> None:
    def cols(plural: str) -> list[str]:
        crd = next(c for c in CRDS.values() if c["spec"]["names"]["plural"] == plural)
        return [c["name"].upper() for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
                if not c.get("priority")]

    assert cols("synthdatasets") == ["PHASE", "PROGRESS", "SAMPLES", "RATE/DAY", "WORKERS", "ADMITTED", "ETA", "COST", "BUSY",
                                          "AGE"]
    assert cols("renderbatches") == ["DATASET", "SHARDS", "DONE", "PHASE", "ATTEMPT", "PREEMPTIONS", "AGE"]


def test_every_spec_field_has_a_description() -> None:
    def missing(node: dict[str, Any], path: str) -> list[str]:
        out = [] if node.get("description") else [path]
        for k, sub in node.get("properties", {}).items():
            out += missing(sub, f"{path}.{k}")
        if "items" in node and node["items"].get("type") == "object":
            out += missing(node["items"], f"{path}[]")
        return out

    assert missing(_schema("synthdatasets")["properties"]["spec"], "spec") == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_fit_the_crd_schema_and_its_cel_rules(path: Path) -> None:
    doc = load_example(path)
    schema = _schema("synthdatasets")
    jsonschema.validate(doc, openapi_to_jsonschema(schema), format_checker=jsonschema.FormatChecker())
    assert cel_violations(schema, doc) == []


def _cel_case(minimal: dict[str, Any], spec_patch: dict[str, Any]) -> list[str]:
    minimal["spec"].update(spec_patch)
    return [m for _, m in cel_violations(_schema("synthdatasets"), minimal)]


CEL_BAD = [
    ({"workers": {"min": 5, "max": 2}}, "workers.min must be <= workers.max"),
    ({"categories": [{"name": "camera", "weight": 1}, {"name": "camera", "weight": 2}]}, "must not repeat"),
    ({"categories": [{"name": "camera", "weight": 0}]}, "at least one weight"),
    ({"render": {"samples": {"min": 9, "max": 3}, "passes": ["rgb"]}}, "samples.min must be <= samples.max"),
    ({"render": {"passes": ["depth"]}}, "render.passes must include rgb"),
    ({"assets": {"libraries": [{"name": "a", "uri": "file:///a"}, {"name": "a", "uri": "file:///b"}]}},
     "assets.libraries must not repeat a name"),
    ({"categories": [{"name": "camera", "assets": {"libraries": ["nope"]}}]}, "must name libraries in spec.assets"),
    ({"render": {"views": {"count": 3}}, "categories": [{"name": "motion", "render": {"frames": {"count": 4}}}]},
     "categories[].render: views.count and frames.count cannot both be > 1"),
    ({"categories": [{"name": "motion", "render": {"frames": {"count": 4}, "views": {"count": 2}}}]},
     "categories[].render.views.count and categories[].render.frames.count cannot both be > 1"),
]


@pytest.mark.parametrize(("patch", "message"), CEL_BAD, ids=[m for _, m in CEL_BAD])
def test_cel_rules_reject_what_the_models_reject(minimal: dict[str, Any], patch: dict[str, Any], message: str) -> None:
    assert any(message in m for m in _cel_case(minimal, patch))


def test_cel_rules_accept_a_good_object(minimal: dict[str, Any]) -> None:
    good = {"workers": {"min": 2, "max": 2},
            "categories": [{"name": "camera", "weight": 1, "assets": {"libraries": ["props"], "share": 0.5}}],
            "assets": {"libraries": [{"name": "props", "uri": "builtin:sample"}]},
            "render": {"samples": {"min": 4, "max": 4}, "passes": ["rgb", "depth"]}}
    assert _cel_case(minimal, good) == []


def test_long_names_are_rejected_by_cel(minimal: dict[str, Any]) -> None:
    minimal["metadata"]["name"] = "a" * 64
    assert cel_violations(_schema("synthdatasets"), minimal) != []


def test_openapi_rejects_out_of_range_values(minimal: dict[str, Any]) -> None:
    minimal["spec"]["shardSize"] = 0
    minimal["spec"]["output"]["uri"] = "s3://"
    validator = jsonschema.Draft7Validator(openapi_to_jsonschema(_schema("synthdatasets")))
    paths = {".".join(map(str, e.absolute_path)) for e in validator.iter_errors(minimal)}
    assert {"spec.shardSize", "spec.output.uri"} <= paths


def test_generated_yaml_is_loadable() -> None:
    for name in CRDS:
        assert yaml.safe_load((ROOT / "crds" / name).read_text())["kind"] == "CustomResourceDefinition"
