"""The index, the summary, the contact sheet and the progress display, as a user sees them."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner
from PIL import Image

from parallel_synth.commands.cli import cli
from parallel_synth.dataset.index import write_index
from parallel_synth.dataset.preview import (
    HEADER,
    LABEL_WIDTH,
    PreviewSample,
    compose_sheet,
    id_color,
    overlay,
)
from parallel_synth.local.progress import LineDisplay, Tracker, format_duration, summary_line
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.classes import spec_vocabulary
from synth_contract.store import FileStore


def test_index_has_one_row_per_sample_with_metadata(dataset: FileStore, tiny_spec: SynthDatasetSpec) -> None:
    table = pq.read_table(dataset.root / "index" / "metadata.parquet")
    assert table.num_rows == 110
    rows = table.to_pylist()
    row = rows[37]
    assert row["key"] == planning.sample_key(37)
    assert row["index"] == 37 and row["shard"] == 3
    assert row["category"] == planning.category_of(tiny_spec, 37)
    assert row["seed"] == planning.sample_seed(3, "1", 37)
    assert (row["width"], row["height"]) == (32, 32)
    assert row["tar"] == "shards/00000003.tar"
    assert set(row["members"]) == {"png", "json", "seg.png", "depth.png"}
    assert row["num_objects"] == len(row["objects"]) >= 1
    assert json.loads(row["metadata"])["index"] == 37
    jsonl = (dataset.root / "index" / "metadata.jsonl").read_text().splitlines()
    assert len(jsonl) == 110
    assert json.loads(jsonl[37])["metadata"]["camera"]["intrinsics"][0][0] == 40.0


def test_dataset_json_summarises_counts_quality_and_spec(dataset: FileStore) -> None:
    doc = json.loads((dataset.root / "dataset.json").read_text())
    assert doc["name"] == "tiny" and doc["version"] == "1"
    assert doc["samples"] == {"target": 110, "completed": 110}
    assert doc["shards"] == {"total": 11, "completed": 11}
    assert sum(c["completed"] for c in doc["categories"].values()) == 110
    assert 0.6 <= doc["quality"]["mean"] <= 1.0 and doc["quality"]["passRate"] == 1.0
    assert SynthDatasetSpec.model_validate(doc["spec"]).samples == 110
    assert doc["layout"]["index"] == ["index/metadata.parquet", "index/metadata.jsonl"]


def test_dataset_json_classes_come_from_the_shard_manifests(dataset: FileStore, tiny_spec: SynthDatasetSpec) -> None:
    doc = json.loads((dataset.root / "dataset.json").read_text())
    assert doc["classes"] == spec_vocabulary(tiny_spec)  # manifests without `classes`: the spec's vocabulary
    vocab = [{"id": 1, "name": "cube"}, {"id": 2, "name": "teapot"}]  # e.g. a library class the spec cannot name
    for shard in range(planning.shard_count(tiny_spec)):
        path = dataset.root / layout.manifest_path(shard)
        path.write_text(json.dumps({**json.loads(path.read_text()), "classes": vocab}))
    doc = write_index(tiny_spec, "tiny", dataset, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert doc["classes"] == vocab
    assert json.loads((dataset.root / "dataset.json").read_text())["classes"] == vocab


def test_overlay_tints_objects_and_keeps_the_background() -> None:
    rgb = np.full((8, 8, 3), 100, np.uint8)
    seg = np.zeros((8, 8), np.uint8)
    seg[2:4, 2:4] = 3
    out = overlay(rgb, seg, alpha=0.5)
    assert (out[0, 0] == 100).all()
    expected = (0.5 * 100 + 0.5 * np.array(id_color(3))).astype(np.uint8)
    assert np.abs(out[2, 2].astype(int) - expected).max() <= 1


def test_sheet_outlines_masks_and_leaves_the_render_visible() -> None:
    rgb = np.full((32, 32, 3), 120, np.uint8)
    seg = np.zeros((32, 32), np.uint16)
    seg[8:24, 8:24] = 5  # no bbox: only the mask is drawn
    sheet = compose_sheet({"geometry": [PreviewSample("k", "geometry", rgb, seg)]}, per_row=1, cell=64)
    cell = np.asarray(sheet)[HEADER:HEADER + 64, LABEL_WIDTH:LABEL_WIDTH + 64].astype(int)
    colour = np.array(id_color(5))
    assert (cell[16, 16:48] == colour).all() and (cell[16:48, 16] == colour).all()  # the mask's edge, crisp
    inside = cell[32, 32]
    assert np.abs(inside - 120).max() < 0.25 * np.abs(colour - 120).max()  # a faint tint: the render shows
    assert (cell[4, 4] == 120).all()  # the background untouched


def test_preview_draws_one_row_per_category(dataset: FileStore, tmp_path: object) -> None:
    out = dataset.root.parent / "grid.png"
    res = CliRunner().invoke(cli, ["preview", str(dataset.root), "--out", str(out), "--per-category", "3",
                                   "--cell", "64"])
    assert res.exit_code == 0, res.output
    assert "33 samples in 11 categories" in res.output
    img = Image.open(out).convert("RGB")
    assert img.height >= 11 * 64 and img.width >= 3 * 64
    # boxes are drawn in their objects' colours somewhere on the sheet
    pixels = np.asarray(img).reshape(-1, 3)
    assert (pixels == np.array(id_color(1))).all(axis=1).any()


def test_tracker_rates_eta_and_resume_counts() -> None:
    t = Tracker(total_samples=100, total_shards=10, targets={"a": 50, "b": 50}, started=0.0)
    t.shard_already_committed(0, {"a": 5, "b": 5})  # from an earlier run: counted, not a rate
    for i in range(10):
        t.sample_done(1, "a" if i % 2 else "b", now=6.0 * (i + 1))
    assert t.done_samples == 20
    assert t.samples_per_minute(60.0) == 10.0
    assert t.eta_seconds(60.0) == 80 / 10 * 60
    t.shard_done(1, {"a": 5, "b": 5}, now=60.0)
    assert t.category_done("a") == 10 and t.done_samples == 20
    t.sample_done(2, "a", now=61.0)
    t.shard_lost(2, why="failed")
    snap = t.snapshot(61.0)
    assert snap["samples"] == 20 and snap["failedShards"] == 1 and snap["shards"] == 2


def test_line_display_prints_plain_lines() -> None:
    buf = io.StringIO()
    clock = iter([0.0, 1.0, 10.0])
    display = LineDisplay(buf, interval=5.0, clock=lambda: next(clock))
    t = Tracker(total_samples=10, total_shards=1, targets={"geometry": 10}, started=0.0)
    for _ in range(3):
        display.update(t.snapshot(0.0))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2  # the second update came too soon
    assert "0/10 samples (0%)" in lines[0] and "geometry=0/10" in lines[0]
    assert all(ch.isprintable() for ch in buf.getvalue().replace("\n", ""))
    assert format_duration(3725) == "1h02m"
    assert "stopping" in summary_line({**t.snapshot(0.0), "stopping": True})
