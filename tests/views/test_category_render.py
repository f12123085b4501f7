"""``categories[].render``: one dataset mixing multi-view samples, sequences and stills."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import OPEN_GATE, SMALL, spec, wire, write_manifest
from views_helpers import plan_json

from synth_contract import layout, multiview, planning
from synth_contract.api import SynthDatasetSpec

README = Path(__file__).resolve().parents[2] / "README.md"

MIXED = [{"name": "geometry", "weight": 1, "render": {"views": {"count": 3, "pattern": "orbit"}}},
         {"name": "motion", "weight": 1, "render": {"frames": {"count": 2, "fps": 12}}},
         {"name": "materials", "weight": 1}]


PLANNED = wire(SMALL, samples=2000, shardSize=100, output={"uri": "s3://bucket/x"}, image="img",
               estimates={"gpuSecondsPerSample": 10, "bytesPerSample": 1_000_000},
               render={"passes": ["rgb", "depth", "segmentation"]})


def _plan(tmp_path: Path, categories: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return plan_json(tmp_path / f"{name}.yaml", wire(PLANNED, categories=categories), name=name)


def test_plan_counts_extra_views_and_frames_only_for_the_categories_that_have_them(tmp_path: Path) -> None:
    cats = [*MIXED[:2], {"name": "materials", "weight": 2}]  # shares 1/4, 1/4, 1/2
    plain = _plan(tmp_path, [{k: v for k, v in c.items() if k != "render"} for c in cats], "plain")
    mixed = _plan(tmp_path, cats, "mixed")
    share = multiview.EXTRA_VIEW_GPU_SHARE
    # A quarter of the samples has 2 extra views, a quarter 1 extra frame, half none.
    extra = (2 * share + 1 * share) / 4
    assert mixed["gpuSecondsPerSample"] == pytest.approx(10 * (1 + extra))
    assert mixed["gpuHours"] == pytest.approx(plain["gpuHours"] * (1 + extra))
    # Bytes: every pass once per view (3 views) or frame (2 frames), for that category's quarter.
    assert mixed["bytesPerPass"]["views"] == pytest.approx(1_000_000 * 3 / 4)
    assert mixed["bytesPerPass"]["frames"] == pytest.approx(1_000_000 * 2 / 4)
    assert mixed["bytesPerSample"] == pytest.approx(1_000_000 * (1 + 3 / 4 + 2 / 4))
    assert "views" not in plain["bytesPerPass"] and plain["gpuSecondsPerSample"] == 10
    assert (mixed["views"], mixed["frames"]) == (3, 2)
    note = next(a["note"] for a in mixed["assumptions"] if a["name"] == "gpuSecondsPerSample")
    assert "geometry" in note and "motion" in note and "materials" not in note

    # simulate spends the same GPU time per sample (categories weighted alike).
    from parallel_synth.simulator.fleet import simulate
    from parallel_synth.simulator.model import SimConfig

    cfg = SimConfig(jitter=0.0, pod_startup_seconds=0.0, node_provision_seconds=0.0)
    runs = [simulate(n, SynthDatasetSpec.model_validate(yaml.safe_load((tmp_path / f"{n}.yaml").read_text())["spec"]),
                     cfg) for n in ("plain", "mixed")]
    gpu = [r.spot_gpu_hours + r.on_demand_gpu_hours for r in runs]
    assert gpu[1] / gpu[0] == pytest.approx(1 + extra, rel=0.05)


def test_a_category_cannot_have_views_and_frames_with_the_spec_defaults_either() -> None:
    views = wire(SMALL, samples=10, output={"uri": "s3://bucket/x"}, image="i", render={"views": {"count": 3}})
    with pytest.raises(ValueError, match=r"categories\[0\]\.render: views.count 3 and frames.count 4"):
        spec(views, categories=[{"name": "motion", "render": {"frames": {"count": 4}}}])
    fixed = spec(views, categories=[{"name": "motion", "render": {"frames": {"count": 4}, "views": {"count": 1}}}])
    assert multiview.view_count(fixed, "motion") == 1 and multiview.frame_count(fixed, "motion") == 4
    assert multiview.view_count(fixed, "geometry") == 3  # not listed: spec.render's


@pytest.mark.blender
@pytest.mark.slow
def test_a_mixed_dataset_generates_validates_and_exports_nerf_for_its_multi_view_samples(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("bpy")
    mixed = wire(SMALL, samples=3, seed=5, version="1", shardSize=3, categories=MIXED,
                 render={"resolutions": [{"width": 32, "height": 32}], "samples": {"min": 1, "max": 1},
                         "denoise": False, "passes": ["rgb", "segmentation"]},
                 quality=OPEN_GATE, output=tmp_path / "out", image="renderer:test")
    cmd = [sys.executable, "-m", "parallel_synth.commands.cli"]
    manifest = write_manifest(tmp_path / "mixed.yaml", mixed, name="mixed")
    res = subprocess.run([*cmd, "generate", str(manifest), "--out", str(tmp_path / "d"),
                          "--workers", "1"], capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    root = tmp_path / "d" / "mixed" / "v1"
    model = spec(mixed)
    by_cat = {planning.category_of(model, i): planning.sample_key(i) for i in range(3)}
    with tarfile.open(root / layout.shard_path(0)) as tar:
        names = set(tar.getnames())
    assert {f"{by_cat['geometry']}.view{k:02d}.{e}" for k in range(3) for e in ("png", "seg.png")} <= names
    assert {f"{by_cat['motion']}.frame{t:03d}.{e}" for t in range(2) for e in ("png", "seg.png")} <= names
    assert not any(n.startswith(by_cat["materials"]) and (".view" in n or ".frame" in n) for n in names)
    assert not any(n.startswith(by_cat["geometry"]) and ".frame" in n for n in names)

    res = subprocess.run([*cmd, "validate", str(root)], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr

    out = tmp_path / "nerf"
    res = subprocess.run([*cmd, "export", str(root), "--format", "nerf", "--out", str(out)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in out.iterdir()) == [by_cat["geometry"]]
    assert len(json.loads((out / by_cat["geometry"] / "transforms.json").read_text())["frames"]) == 3
    assert "2 samples without views left out" in res.stdout

    # The README's Hugging Face recipe loads the mix (it would refuse the differing members without features).
    text = README.read_text()
    block = re.search(r"```python\n(from datasets import .*?)```", text, re.S)
    assert block, "no Hugging Face block in README.md"
    (tmp_path / "data" / "quickstart").mkdir(parents=True)
    (tmp_path / "data" / "quickstart" / "v1").symlink_to(root)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    scope: dict[str, Any] = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)
    rows = {r["__key__"]: r for r in scope["ds"]}
    assert len(rows) == 3 and len(rows[by_cat["geometry"]]["json"]["views"]) == 3
    assert len(rows[by_cat["motion"]]["json"]["frames"]) == 2
