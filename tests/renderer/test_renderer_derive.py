"""spec.derivedFrom: a new version re-renders only the low scorers of the old one and copies the rest."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import builders
from builders import RENDER
from fake_renderer import FakeRenderer

from parallel_synth.dataset.checks import check_dataset
from parallel_synth.dataset.index import write_index
from synth_contract import layout, planning
from synth_contract.store import open_store
from synth_render import shards
from synth_render.worker import run_shard

QUALITY = {"minScore": 0.3, "minPassRate": 0.0, "maxRerenders": 0, "maxNoiseSigma": None}


def _samples(root: Path) -> dict[str, dict[str, bytes]]:
    return dict(shards.read_samples(root / layout.shard_path(0)))


def test_a_derived_version_rerenders_low_scorers_and_copies_the_rest(tmp_path: Path) -> None:
    v1 = builders.spec(RENDER, samples=8, shardSize=8, quality=QUALITY, render={**RENDER["render"], "captioner": "none"})
    noisy = {planning.sample_seed(v1.seed, "1", 2)}  # quarantined in v1
    assert run_shard(v1, "ds", 0, store=open_store((tmp_path / "ds/v1").as_uri()),
                     renderer=FakeRenderer(noisy_seeds=noisy)).status == "committed"
    old = _samples(tmp_path / "ds/v1")
    scores = {k: json.loads(f["json"])["quality"]["score"] for k, f in old.items()}
    below = sorted(scores.values())[len(scores) // 2]  # the lower half (and the quarantined one) again
    low = {k for k, s in scores.items() if s < below} | {planning.sample_key(2)}

    v2 = builders.spec(RENDER, samples=8, shardSize=8, quality=QUALITY, render={**RENDER["render"], "captioner": "none"}, version="2",
                   derivedFrom={"version": "1", "rerender": {"belowScore": below}})
    paint = FakeRenderer()
    out = run_shard(v2, "ds", 0, store=open_store((tmp_path / "ds/v2").as_uri()), renderer=paint)
    assert out.status == "committed" and out.samples == 8
    assert sorted(paint.calls) == sorted(planning.sample_seed(v2.seed, "2", int(k)) for k in low)
    new = _samples(tmp_path / "ds/v2")
    for key, files in new.items():
        meta = json.loads(files["json"])
        assert meta["version"] == "2" and meta["derived"]["from"] == "1"
        if key in low:
            assert meta["derived"]["copied"] is False and meta["seed"] == planning.sample_seed(v2.seed, "2", int(key))
        else:
            assert meta["derived"]["copied"] is True and files["png"] == old[key]["png"]
            assert meta["seed"] == planning.sample_seed(v1.seed, "1", int(key))

    files = open_store((tmp_path / "ds/v2").as_uri())
    doc = write_index(v2, "ds", files, now=datetime.datetime(2026, 1, 1))
    assert doc["derivedFrom"] == {"version": "1", "belowScore": below, "copied": 8 - len(low),
                                  "rerendered": len(low)}
    report = check_dataset(files, spec=v2)
    assert report.ok, report.problems


def test_derived_from_must_name_another_version() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="earlier version"):
        builders.spec(RENDER, derivedFrom={"version": "1", "rerender": {"belowScore": 0.5}})
