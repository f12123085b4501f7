"""Samples that keep failing the gate are quarantined, never shipped; a shard under minPassRate exits 3."""

from __future__ import annotations

import json
from pathlib import Path

import builders
from builders import RENDER
from fake_renderer import FakeRenderer

from parallel_synth.dataset.checks import CheckOptions, check_dataset
from parallel_synth.dataset.index import INDEX_QUARANTINE, write_index
from synth_contract import layout, planning
from synth_contract.exitcodes import EXIT_QUALITY_GATE
from synth_contract.store import open_store
from synth_render import shards
from synth_render.manifests import verify_shard
from synth_render.worker import run_shard


def _seeds(spec: object, index: int, attempts: range) -> set[int]:
    seed = planning.sample_seed(spec.seed, spec.version, index)  # type: ignore[attr-defined]
    return {planning.derived_seed(seed, a) for a in attempts}


def test_a_sample_failing_every_rerender_is_quarantined_and_one_that_recovers_is_kept(tmp_path: Path) -> None:
    spec = builders.spec(RENDER, samples=8, shardSize=8,
                     quality={"minScore": 0.3, "minPassRate": 0.5, "maxRerenders": 2, "maxNoiseSigma": None},
                     render={**RENDER["render"], "captioner": "none"})  # captions: test_a_caption_problem_fails_the_kept_attempt
    paint = FakeRenderer(noisy_seeds=_seeds(spec, 2, range(3)) | _seeds(spec, 5, range(1)))
    store = open_store(tmp_path.as_uri())
    out = run_shard(spec, "ds", 0, store=store, renderer=paint)
    assert out.status == "committed" and out.exit_code == 0 and out.samples == 7
    keys = [k for k, _ in shards.read_samples(tmp_path / layout.shard_path(0))]
    assert planning.sample_key(2) not in keys and planning.sample_key(5) in keys and len(keys) == 7
    manifest = json.loads((tmp_path / layout.manifest_path(0)).read_text())
    assert manifest["samples"] == 7 and manifest["quarantined"]["keys"] == [planning.sample_key(2)]
    assert sum(manifest["categories"].values()) == 7 and manifest["quality"]["passRate"] == 0.875
    assert verify_shard(store, 0, deep=True) == []
    held = [k for k, _ in shards.read_samples(tmp_path / layout.quarantine_path(0))]
    assert held == [planning.sample_key(2)]
    doc = json.loads((tmp_path / layout.quarantine_list_path(0)).read_text())
    entry = doc["entries"][0]
    assert entry["index"] == 2 and entry["attempts"] == 3 and entry["reasons"][0].startswith("noise:")
    recovered = next(json.loads(f["json"]) for k, f in shards.read_samples(tmp_path / layout.shard_path(0))
                     if k == planning.sample_key(5))
    assert recovered["quality"]["passed"] and recovered["quality"]["attempts"] == 2

    # The dataset stays consistent: validate is clean, the index has only training samples,
    # the quarantine is listed with its reasons, every score component is a column.
    files = open_store(tmp_path.as_uri())
    summary = write_index(spec, "ds", files, now=__import__("datetime").datetime(2026, 1, 1))
    assert summary["samples"]["completed"] == 7 and summary["quarantine"]["samples"] == 1
    assert summary["quarantine"]["reasons"] == {"noise": 1} and summary["quality"]["passRate"] == 0.875
    rows = [json.loads(line) for line in (tmp_path / "index/metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 7 and all(r["passed"] for r in rows)
    assert {"noise", "exposure", "masks", "noiseSigma", "visibleObjects"} <= set(rows[0]["quality"])
    held_rows = (tmp_path / INDEX_QUARANTINE).read_text().splitlines()
    assert [json.loads(r)["key"] for r in held_rows] == [planning.sample_key(2)]
    import pyarrow.parquet as pq
    table = pq.read_table(tmp_path / "index/metadata.parquet")
    assert table.column("passed").to_pylist() == [True] * 7
    assert "noiseSigma" in table.schema.field("quality").type.names
    report = check_dataset(files, spec=spec, options=CheckOptions())
    assert report.ok, [p for p in report.problems]
    assert report.quarantined == 1


def test_a_shard_under_min_pass_rate_exits_3_and_commits_nothing(tmp_path: Path) -> None:
    spec = builders.spec(RENDER, quality={"minScore": 0.3, "minPassRate": 0.9, "maxRerenders": 1, "maxNoiseSigma": None})
    noisy = set().union(*(_seeds(spec, i, range(2)) for i in range(4)))
    store = open_store(tmp_path.as_uri())
    out = run_shard(spec, "ds", 0, store=store, renderer=FakeRenderer(noisy_seeds=noisy))
    assert out.status == "failed" and out.exit_code == EXIT_QUALITY_GATE == 3 and "pass rate" in out.reason
    assert not store.exists(layout.manifest_path(0)) and not store.exists(layout.quarantine_path(0))


def test_validate_flags_a_failed_sample_found_in_a_training_shard(tmp_path: Path) -> None:
    """Datasets rendered before the quarantine shipped failing samples with passed: false."""
    spec = builders.spec(RENDER, samples=4, shardSize=4, render={**RENDER["render"], "captioner": "none"},
                     quality={"minScore": 0.3, "minPassRate": 0.0, "maxRerenders": 0, "maxNoiseSigma": None})
    store = open_store(tmp_path.as_uri())
    assert run_shard(spec, "ds", 0, store=store, renderer=FakeRenderer()).status == "committed"
    tar = tmp_path / layout.shard_path(0)
    samples = list(shards.read_samples(tar))
    key, files = samples[1]
    meta = json.loads(files["json"])
    meta["quality"] = {**meta["quality"], "passed": False, "reasons": ["noise: estimated sigma 0.2 > 0.06"]}
    writer = shards.ShardWriter(tmp_path / "re.tar")
    for k, f in samples:
        writer.add(k, {**f, "json": json.dumps(meta).encode()} if k == key else f)
    size, digest = writer.finish()
    tar.write_bytes((tmp_path / "re.tar").read_bytes())
    man_path = tmp_path / layout.manifest_path(0)
    man_path.write_text(json.dumps({**json.loads(man_path.read_text()), "bytes": size, "sha256": digest}))
    report = check_dataset(open_store(tmp_path.as_uri()), spec=spec, options=CheckOptions())
    leaks = [p for p in report.problems if p.code == "quarantine-leak"]
    assert len(leaks) == 1 and key in leaks[0].message and "noise" in leaks[0].message
