"""spec.schedule in local mode: a segment appended to a finished run renders only the new shards."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from builders import LOCAL, wire, write_manifest
from local_helpers import FAKE_RENDERER

from parallel_synth.dataset.checks import check_dataset
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import FileStore

SYNTHCTL = [sys.executable, "-m", "parallel_synth.commands.cli"]
SEGMENT = {"fromShard": 11, "categories": [{"name": "fluids", "weight": 3}, {"name": "vehicles", "weight": 1}]}


def _generate(manifest: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYNTHCTL, "generate", str(manifest), "--out", str(out), "--workers", "2",
                           "--renderer", FAKE_RENDERER], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in ("shards", "manifests") for p in sorted((root / d).iterdir())}


@pytest.mark.slow
def test_an_appended_segment_renders_only_new_shards_and_keeps_committed_ones_byte_identical(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    tiny = wire(LOCAL, output=tmp_path / "ignored")
    first = _generate(write_manifest(tmp_path / "a.yaml", tiny, name="tiny"), tmp_path / "data", subprocess_env)
    assert first.returncode == 0, first.stderr
    root = tmp_path / "data" / "tiny" / "v1"
    before = _digests(root)

    grown = {**tiny, "samples": 150, "schedule": [SEGMENT]}
    second = _generate(write_manifest(tmp_path / "b.yaml", grown, name="tiny"), tmp_path / "data", subprocess_env)
    assert second.returncode == 0, second.stderr
    assert "4 rendered now, 11 earlier" in second.stdout
    after = _digests(root)
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(after) == len(before) + 8

    spec = SynthDatasetSpec.model_validate(grown)
    new = json.loads((root / layout.manifest_path(12)).read_text())
    assert {c for c, n in new["categories"].items() if n} == {"fluids", "vehicles"}
    doc = json.loads((root / "dataset.json").read_text())
    segs = doc["segments"]
    assert [(s["fromShard"], s["toShard"]) for s in segs] == [(0, 11), (11, 15)]
    assert segs[1]["categories"] == {"fluids": {"target": 30, "completed": 30}, "vehicles": {"target": 10,
                                                                                           "completed": 10}}
    assert segs[0]["categories"]["fluids"] == {"target": 10, "completed": 10}
    assert doc["categories"]["fluids"]["completed"] == 40
    report = check_dataset(FileStore(root), spec=spec)
    counted = {"category-balance", "category-count", "sample-count", "missing-samples", "bad-manifest",
               "bad-dataset-json", "index-rows"}
    assert [p for p in report.problems if p.code in counted] == []
    assert report.to_json()["segments"][1]["categories"]["fluids"] == {"found": 30, "target": 30}

    # Re-weighting committed work is refused, with the field and the way out.
    for bad, words in (({**grown, "schedule": [{**SEGMENT, "fromShard": 5}]}, ("schedule[0]",)),
                       ({**grown, "schedule": [SEGMENT, {"fromShard": 13, "categories": [{"name": "camera"}]}]},
                        ("fromShard 13", "15")),
                       ({**grown, "categories": [{"name": "fluids", "weight": 1}]}, ("categories",))):
        res = _generate(write_manifest(tmp_path / "c.yaml", bad, name="tiny"), tmp_path / "data", subprocess_env)
        assert res.returncode != 0 and all(w in res.stderr for w in words), res.stderr
        assert "Traceback" not in res.stderr
    assert _digests(root) == after


def test_category_counts_follow_each_segment_and_stay_closed_form() -> None:
    spec = SynthDatasetSpec.model_validate(wire(
        LOCAL, output=Path("/tmp/x"), samples=10_000_000, shardSize=1000,
        schedule=[{"fromShard": 3, "categories": [{"name": "fluids"}]},
                  {"fromShard": 9000, "categories": [{"name": "camera"}]}]))
    assert planning.category_counts(spec, 3000, 4000) == {**dict.fromkeys(planning.category_targets(spec), 0),
                                                          "fluids": 1000}
    assert planning.category_of(spec, 2999) != "fluids" or planning.category_layout(spec).names
    assert planning.category_of(spec, 9_000_000) == "camera"
    brute: dict[str, int] = {}
    for i in range(2500, 3700):
        c = planning.category_of(spec, i)
        brute[c] = brute.get(c, 0) + 1
    assert {k: v for k, v in planning.category_counts(spec, 2500, 3700).items() if v} == brute
    targets = planning.category_targets(spec)
    assert sum(targets.values()) == spec.samples and targets["camera"] > 1_000_000
    # a sample's rank counts its category across the segments before it
    assert planning.category_rank(spec, 3000) == planning.category_counts(spec, 0, 3000)["fluids"]
