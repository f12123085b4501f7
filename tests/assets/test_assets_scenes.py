"""Library objects in scenes (pure, seeded), credits, `synthctl assets check`, fail-fast paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import builders
import numpy as np
import pytest
from builders import SMALL, manifest, wire, write_manifest

from parallel_synth.dataset.credits import Credits
from synth_render.assets.choose import with_library_assets
from synth_render.assets.fetch import AssetCache
from synth_render.assets.library import load_library
from synth_render.generators import GENERATORS, GenConfig
from synth_render.placement import object_bounds

ROOT = Path(__file__).parents[2]


def _scene(seed: int, rank: int) -> Any:
    cfg = GenConfig(category="composition", seed=seed, rank=rank,
                    strata=tuple(np.random.default_rng(seed).random(8)), aspect=1.0)
    return GENERATORS["composition"](cfg, np.random.default_rng(seed))


@pytest.fixture
def lib(sample_lib: Path, tmp_path: Path) -> Any:
    return load_library("props", sample_lib.as_uri(), AssetCache(tmp_path / "cache"))


def _free_subjects(scene: Any) -> list[int]:
    """Indexes of the subject objects nothing stands on (a stack's lower boxes stay procedural)."""
    boxes = [object_bounds(o) for o in scene.objects]
    return [i for i, (lo, hi) in enumerate(boxes) if not scene.objects[i].distractor and not any(
        k != i and abs(b[0][2] - hi[2]) < 2e-3 and b[0][0] < hi[0] and b[1][0] > lo[0]
        and b[0][1] < hi[1] and b[1][1] > lo[1] for k, b in enumerate(boxes))]


def test_share_of_subject_objects_comes_from_the_library(lib: Any) -> None:
    replaced = total = 0
    for i in range(40):
        before = _scene(i, i)
        scene = with_library_assets(before, [lib], share=0.5, seed=i, rank=i)
        replaced += sum(o.asset is not None for o in scene.objects)
        total += len(_free_subjects(before))
        for o in scene.objects:
            if o.asset is not None:
                assert o.cls == o.asset.cls and o.parts == () and o.asset.license == "CC0-1.0"
    assert 0.4 < replaced / total < 0.6


def test_classes_and_assets_are_used_evenly_and_choice_is_seeded(lib: Any) -> None:
    classes: Counter[str] = Counter()
    assets: Counter[str] = Counter()
    for i in range(60):
        scene = with_library_assets(_scene(i, i), [lib], share=1.0, seed=i, rank=i)
        again = with_library_assets(_scene(i, i), [lib], share=1.0, seed=i, rank=i)
        assert scene == again
        free = _free_subjects(_scene(i, i))  # share 1: every subject that carries nothing (if it fits)
        assert sum(scene.objects[k].asset is not None for k in free) >= 0.9 * len(free)
        assert all(o.asset is None for o in scene.objects if o.distractor)  # clutter stays procedural
        for o in scene.objects:
            if o.asset is not None:
                classes[o.asset.cls] += 1
                assets[o.asset.id] += 1
    assert len(classes) == 5 and max(classes.values()) - min(classes.values()) <= 0.1 * sum(classes.values()) / 5 + 2
    assert len(assets) == 10 and min(assets.values()) >= 0.7 * sum(assets.values()) / 10


def test_credits_count_each_asset_once_per_sample_and_list_rejections() -> None:
    c = Credits()
    a = {"library": "props", "id": "mug/m.glb", "license": "CC0-1.0", "attribution": "me"}
    c.add_sample({"objects": [{"id": 1, "asset": a}, {"id": 2, "asset": a}, {"id": 3, "class": "cube"}],
                  "environment": {"uri": "builtin:studiolights", "id": "forest.exr"}})
    c.add_sample({"objects": [{"id": 1, "asset": a}],
                  "assetsRejected": [{"library": "props", "path": "box/bad.glb", "why": "not a GLB file"}]})
    doc = c.doc()
    assert doc["credits"]["assets"] == [{**a, "samples": 2}]
    assert doc["credits"]["environments"][0]["license"] == "CC0-1.0"
    assert doc["assetsRejected"] == [{"library": "props", "path": "box/bad.glb", "why": "not a GLB file"}]


def _synthctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_synth.commands.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_assets_check_reports_classes_and_problems(sample_lib: Path, tmp_path: Path) -> None:
    ok = _synthctl("assets", "check", sample_lib.as_uri())
    assert ok.returncode == 0, ok.stderr
    assert "10 usable of 10 assets in 5 classes" in ok.stdout and "CC0-1.0 (10)" in ok.stdout
    bad = tmp_path / "bad"
    (bad / "box").mkdir(parents=True)
    (bad / "box" / "good.stl").write_bytes(next(sample_lib.rglob("*.stl")).read_bytes())
    (bad / "box" / "corrupt.glb").write_bytes(b"this is not a mesh at all")
    (bad / "box" / "empty.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 0\nend_header\n")
    res = _synthctl("assets", "check", bad.as_uri())
    assert res.returncode == 1
    assert "corrupt.glb" in res.stderr and "empty.ply" in res.stderr and "Traceback" not in res.stderr
    gone = _synthctl("assets", "check", "file:///no/such/lib")
    assert gone.returncode == 2 and "file:///no/such/lib" in gone.stderr and "Traceback" not in gone.stderr


def _manifest(tmp_path: Path, uri: str, **assets: Any) -> Path:
    """A 2-sample dataset whose composition category draws from library ``uri`` (plus ``assets``)."""
    return write_manifest(tmp_path / "m.yaml", wire(
        SMALL, samples=2, shardSize=2, output=tmp_path / "out", image="x",
        assets={"libraries": [{"name": "props", "uri": uri}], **assets},
        categories=[{"name": "composition", "assets": {"libraries": ["props"]}}]), name="lib-test")


@pytest.mark.parametrize("kind", ["unreachable", "empty"])
def test_generate_refuses_an_unusable_library_before_rendering(kind: str, tmp_path: Path) -> None:
    if kind == "empty":
        (tmp_path / "lib" / "notes").mkdir(parents=True)
        (tmp_path / "lib" / "notes" / "readme.txt").write_text("no meshes")
        uri = (tmp_path / "lib").as_uri()
    else:
        uri = "file:///no/such/library"
    res = _synthctl("generate", str(_manifest(tmp_path, uri)), "--out", str(tmp_path / "out"))
    assert res.returncode == 2, res.stderr
    assert "spec.assets.libraries[0].uri" in res.stderr and uri in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out" / "lib-test" / "v1" / "shards").exists()


def test_generate_refuses_an_unreachable_environment(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "builtin:sample-objects", environments=[{"uri": "file:///no/such/hdris"}])
    res = _synthctl("generate", str(manifest), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "spec.assets.environments[0].uri: file:///no/such/hdris" in res.stderr and "Traceback" not in res.stderr


def test_operator_refuses_asset_uris_pods_cannot_read() -> None:
    from parallel_synth.cluster.reconcile import validated_spec
    from parallel_synth.settings import Settings

    body = manifest(wire(SMALL, samples=2, output={"uri": "s3://bucket/out"}, image="x",
                         assets={"libraries": [{"name": "a", "uri": "file:///srv/lib"},
                                               {"name": "b", "uri": "builtin:nope"},
                                               {"name": "c", "uri": "s3://bucket/lib"}]}), name="d", namespace="n")
    spec, errors = validated_spec(body, settings=Settings())
    assert spec is None
    assert any(e.startswith("spec.assets.libraries[0].uri") and "file:///srv/lib" in e for e in errors)
    assert any(e.startswith("spec.assets.libraries[1].uri") and "builtin:sample-objects" in e for e in errors)
    assert not any("libraries[2]" in e for e in errors)


def test_operator_accepts_every_builtin_source_the_renderer_ships() -> None:
    """The operator keeps its own list of ``builtin:`` names (it does not import the renderer)."""
    from parallel_synth.cluster.reconcile import validated_spec
    from parallel_synth.settings import Settings
    from synth_render.assets.fetch import BUILTINS

    libs = [{"name": f"l{i}", "uri": f"builtin:{name}"} for i, name in enumerate(BUILTINS)]
    body = manifest(wire(SMALL, samples=2, output={"uri": "s3://bucket/out"}, image="x", assets={"libraries": libs}),
                    name="d", namespace="n")
    spec, errors = validated_spec(body, settings=Settings())
    assert spec is not None and errors == [], errors


def test_dataset_json_credits_assets_and_lists_rejections() -> None:
    from datetime import UTC, datetime

    from parallel_synth.dataset.index import Summary, dataset_summary
    spec = builders.spec(SMALL, samples=2, image="x")
    s = Summary()
    a = {"library": "props", "id": "mug/m.glb", "license": "CC-BY-4.0", "attribution": "Jane"}
    metas = [{"objects": [{"id": 1, "class": "mug", "asset": a}]},
             {"objects": [{"id": 2, "class": "mug", "asset": a}],
              "assetsRejected": [{"library": "props", "path": "box/x.glb", "why": "no mesh with faces"}]}]
    for m in metas:
        s.add_row({"category": "composition", "score": 1.0, "metadata": json.dumps(m)}, min_score=0.0)
    doc = dataset_summary(spec, "d", s, files=[], now=datetime.now(UTC))
    assert doc["credits"]["assets"] == [{**a, "samples": 2}]
    assert doc["assetsRejected"] == [{"library": "props", "path": "box/x.glb", "why": "no mesh with faces"}]


def test_render_pod_exits_2_naming_an_unreadable_library(tmp_path: Path) -> None:

    spec = {"samples": 2, "shardSize": 2, "output": {"uri": (tmp_path / "out").as_uri()}, "image": "x",
            "assets": {"libraries": [{"name": "props", "uri": "file:///no/such/library"}]},
            "categories": [{"name": "composition", "assets": {"libraries": ["props"]}}]}
    res = subprocess.run([sys.executable, "-m", "synth_render.worker", "--dataset", "d", "--shard", "0"],
                         env={**os.environ, "SYNTH_SPEC_JSON": json.dumps(spec)}, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert "spec.assets.libraries[0].uri: file:///no/such/library" in res.stderr
    assert not (tmp_path / "out" / "d").exists()


def test_assets_check_reads_an_s3_library_through_the_endpoint(sample_lib: Path, s3_client: Any, s3_endpoint: str,
                                                               bucket: str) -> None:
    from asset_helpers import upload_dir

    upload_dir(s3_client, bucket, "props", sample_lib)
    res = _synthctl("assets", "check", f"s3://{bucket}/props", "--endpoint-url", s3_endpoint, "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["usable"] == 10 and report["classes"] == {c: 2 for c in ("bottle", "box", "chair", "lamp", "mug")}
