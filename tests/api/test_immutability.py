"""The transition rule: a started dataset keeps seed, shardSize, render, categories and its schedule.

Each old/new pair goes through the CRD's CEL rules (with ``oldSelf``, evaluated by cel-python)
and through ``transition_problems`` (what ``validate-manifest --old`` runs): both must agree.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from builders import SMALL, manifest, wire, with_field
from cel_eval import cel_violations

from parallel_synth.commands import crds
from synth_contract.api import SynthDataset
from synth_contract.immutability import transition_problems

SCHEMA = crds.synthdataset_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

SEG = {"fromShard": 4, "categories": [{"name": "geometry", "weight": 1}, {"name": "fluids", "weight": 3}]}


def _obj() -> dict[str, Any]:
    return manifest(wire(SMALL, seed=1, shardSize=100, output={"uri": "s3://bucket-a/x"},
                         categories=[{"name": "geometry", "weight": 1}, {"name": "fluids", "weight": 1}],
                         schedule=[SEG]))


def _started(obj: dict[str, Any], next_shard: int = 6, completed: int = 0) -> dict[str, Any]:
    return {**copy.deepcopy(obj), "status": {"nextShard": next_shard, "shards": {"completed": completed}}}


def _changed(path: str, value: Any) -> dict[str, Any]:
    return with_field(_obj(), f"spec.{path}", value)


def _wire(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server stores it: the spec with its defaults."""
    out = SynthDataset.model_validate({k: v for k, v in obj.items() if k != "status"}).wire()
    if "status" in obj:
        out["status"] = obj["status"]
    return out


NEW_SEG = {"fromShard": 8, "categories": [{"name": "fluids", "weight": 1}]}

CASES = [
    # (case, old, new, refused)
    ("not started: seed may change", _obj(), _changed("seed", 2), False),
    ("started: seed", _started(_obj()), _changed("seed", 2), True),
    ("started: seed with a new version", _started(_obj()), {**_changed("seed", 2),
                                                              "spec": {**_changed("seed", 2)["spec"], "version": "2"}},
     False),
    ("started: shardSize", _started(_obj()), _changed("shardSize", 50), True),
    ("started: render.denoise", _started(_obj()), _changed("render", {"denoise": False}), True),
    ("started: category weights", _started(_obj()),
     _changed("categories", [{"name": "geometry", "weight": 2}, {"name": "fluids", "weight": 1}]), True),
    ("started: more samples", _started(_obj()), _changed("samples", 20000), False),
    ("started: quality settings", _started(_obj()), _changed("quality", {"minScore": 0.7}), False),
    ("started by a committed shard", _started(_obj(), next_shard=0, completed=1), _changed("seed", 2), True),
    ("started: append a segment after nextShard", _started(_obj()), _changed("schedule", [SEG, NEW_SEG]), False),
    ("started: append a segment before nextShard", _started(_obj(), next_shard=9),
     _changed("schedule", [SEG, NEW_SEG]), True),
    ("started: edit an existing segment", _started(_obj()),
     _changed("schedule", [{**SEG, "categories": [{"name": "fluids", "weight": 1}]}]), True),
    ("started: move an existing segment", _started(_obj()), _changed("schedule", [{**SEG, "fromShard": 5}]), True),
    ("started: remove a segment", _started(_obj()), _changed("schedule", []), True),
    ("not started: edit a segment", _obj(), _changed("schedule", [{**SEG, "fromShard": 5}]), False),
    ("started: append a segment with factor weights", _started(_obj()),
     _changed("schedule", [SEG, {**NEW_SEG, "factors": {"fluids": {"kind": {"pour": 3, "splash": 0.5}}}}]), False),
    ("started: add factor weights to an existing segment", _started(_obj()),
     _changed("schedule", [{**SEG, "factors": {"fluids": {"kind": {"pour": 3}}}}]), True),
    ("started: change the factor weights of an existing segment",
     _started(_changed("schedule", [{**SEG, "factors": {"fluids": {"kind": {"pour": 3}}}}])),
     _changed("schedule", [{**SEG, "factors": {"fluids": {"kind": {"pour": 2}}}}]), True),
    ("started: drop the factor weights of an existing segment",
     _started(_changed("schedule", [{**SEG, "factors": {"fluids": {"kind": {"pour": 3}}}}])),
     _changed("schedule", [SEG]), True),
    ("started: same factor weights written as integers or floats",
     _started(_changed("schedule", [{**SEG, "factors": {"fluids": {"kind": {"pour": 3}}}}])),
     _changed("schedule", [{**SEG, "factors": {"fluids": {"kind": {"pour": 3.0}}}}]), False),
    ("started: derivedFrom", _started(_obj()),
     _changed("derivedFrom", {"version": "0", "rerender": {"belowScore": 0.5}}), True),
]


@pytest.mark.parametrize(("case", "old", "new", "refused"), CASES, ids=[c[0] for c in CASES])
def test_the_cel_rule_and_validate_manifest_old_agree(case: str, old: dict[str, Any], new: dict[str, Any],
                                                      refused: bool) -> None:
    old_w, new_w = _wire(old), _wire(new)
    new_w["status"] = old_w.get("status")  # a spec update keeps the stored status
    if new_w["status"] is None:
        del new_w["status"]
    cel = [m for _, m in cel_violations(SCHEMA, new_w, old=old_w)]
    py = transition_problems(old_w, new_w)
    assert bool(cel) == refused, (case, cel)
    assert bool(py) == refused, (case, py)


def test_transition_rules_do_not_run_on_create() -> None:
    assert cel_violations(SCHEMA, _wire(_obj())) == []


def test_the_message_names_the_fields_and_the_way_out() -> None:
    old = _wire(_started(_obj()))
    new = _wire(_changed("seed", 2))
    new["status"] = old["status"]
    problems = transition_problems(old, new)
    assert problems == ["spec.seed cannot change once the dataset has started, unless spec.version changes too"]
    assert any("unless spec.version changes" in m for _, m in cel_violations(SCHEMA, new, old=old))


def _run(tmp_path: Any, old: dict[str, Any], new: dict[str, Any]) -> Any:
    import subprocess
    import sys

    import yaml

    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    return subprocess.run([sys.executable, "-m", "parallel_synth.commands.cli", "validate-manifest", "--old",
                           str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml")],
                          capture_output=True, text=True, timeout=60, check=False)


def test_validate_manifest_old_refuses_and_accepts_like_the_api_server(tmp_path: Any) -> None:
    refused = _run(tmp_path, _obj(), _changed("seed", 2))  # no status: taken as started
    assert refused.returncode == 1 and "spec.seed cannot change" in refused.stderr
    appended = _run(tmp_path, _obj(), _changed("schedule", [SEG, NEW_SEG]))
    assert appended.returncode == 0, appended.stderr
    not_started = _run(tmp_path, {**_obj(), "status": {"nextShard": 0}}, _changed("seed", 2))
    assert not_started.returncode == 0, not_started.stderr
    (tmp_path / "broken.yaml").write_text("a: [")
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "parallel_synth.commands.cli", "validate-manifest", "--old",
                          str(tmp_path / "broken.yaml"), str(tmp_path / "new.yaml")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr
