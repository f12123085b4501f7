"""Multi-view samples end to end with the real renderer: generate, validate, index, NeRF export,
and the written cameras agree with the pixels (a point seen in two views is the same object)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import builders
import numpy as np
import pyarrow.parquet as pq
import pytest
from builders import OPEN_GATE, SMALL, wire, write_manifest
from PIL import Image

from parallel_synth.dataset.checks import check_dataset
from synth_contract import layout, planning
from synth_contract.store import FileStore

pytestmark = [pytest.mark.blender, pytest.mark.slow]
pytest.importorskip("bpy")

SYNTHCTL = [sys.executable, "-m", "parallel_synth.commands.cli"]
VIEWS = 3
KEYS = [planning.sample_key(i) for i in range(2)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two composition samples, three orbit views each, 64x64 at 2 spp (one worker)."""
    tmp = tmp_path_factory.mktemp("views")
    manifest = write_manifest(tmp / "m.yaml", wire(
        SMALL, samples=2, seed=5, version="1", shardSize=2, categories=[{"name": "composition", "weight": 1}],
        render={"resolutions": [{"width": 64, "height": 64}], "samples": {"min": 2, "max": 2},
                "denoise": False, "passes": ["rgb", "depth", "segmentation", "normals"],
                "views": {"count": VIEWS, "pattern": "orbit"}},
        quality=OPEN_GATE, output=tmp / "out", image="renderer:test"), name="mv")
    res = subprocess.run([*SYNTHCTL, "generate", str(manifest), "--out", str(tmp / "d"), "--workers", "1"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return tmp / "d" / "mv" / "v1"


def _members(root: Path) -> dict[str, bytes]:
    with tarfile.open(root / layout.shard_path(0)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_every_view_has_every_pass_and_the_same_object_ids(dataset: Path) -> None:
    members = _members(dataset)
    for key in KEYS:
        meta = json.loads(members[f"{key}.json"])
        assert [v["view"] for v in meta["views"]] == list(range(VIEWS))
        scene_ids = {o["id"]: o["cls"] for o in meta["scene"]["objects"]}
        for k, view in enumerate(meta["views"]):
            for ext in ("png", "depth.png", "seg.png", "normals.png"):
                assert f"{key}.view{k:02d}.{ext}" in members
            seg = _png(members[f"{key}.view{k:02d}.seg.png"])
            assert {int(i) for i in np.unique(seg)} - {0} == {o["id"] for o in view["objects"]}
            for o in view["objects"]:
                assert scene_ids[o["id"]] == o["class"]
        # View 0 is the sample's own camera and files; the other views see the scene from elsewhere.
        assert members[f"{key}.view00.png"] == members[f"{key}.png"]
        assert meta["views"][0]["extrinsics"] == meta["camera"]["extrinsics"]
        assert len({json.dumps(v["extrinsics"]) for v in meta["views"]}) == VIEWS


def test_validate_and_index_accept_views_and_flag_a_missing_view_member(dataset: Path, tmp_path: Path) -> None:
    res = subprocess.run([*SYNTHCTL, "validate", str(dataset)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert pq.read_table(dataset / "index" / "metadata.parquet").column("num_views").to_pylist() == [VIEWS] * 2
    res = subprocess.run([*SYNTHCTL, "preview", str(dataset), "--out", str(tmp_path / "sheet.png")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and (tmp_path / "sheet.png").stat().st_size > 0, res.stderr
    from parallel_synth.dataset.preview import collect_samples

    (row,) = collect_samples(FileStore(dataset), categories=None, per_row=2).values()
    assert [(s.series, len(s.others)) for s in row] == [(f"{VIEWS} views", VIEWS - 1)] * 2  # thumbnails of views 1..
    # A shard that lost one view's mask is a problem that names the member.
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(dataset), str(broken)], check=True)
    tar_path = broken / layout.shard_path(0)
    members = _members(broken)
    with tarfile.open(tar_path, "w") as tar:
        for name, data in members.items():
            if name != f"{KEYS[1]}.view02.seg.png":
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    report = check_dataset(FileStore(broken))
    missing = [p for p in report.problems if p.code == "missing-member"]
    assert missing and f"{KEYS[1]}.view02.seg.png" in missing[0].message


def _ray_points(depth_m: np.ndarray, frame: dict[str, Any], cam: dict[str, Any], pix: np.ndarray) -> np.ndarray:
    """World points of pixels (N, 2 as row, col) from transforms.json (OpenGL camera-to-world)."""
    c2w = np.asarray(frame["transform_matrix"])
    v, u = pix[:, 0] + 0.5, pix[:, 1] + 0.5
    z = depth_m[pix[:, 0], pix[:, 1]]
    x = (u - cam["cx"]) / cam["fl_x"] * z
    y = -(v - cam["cy"]) / cam["fl_y"] * z  # OpenGL: +y up, looking down -z
    pts = np.stack([x, y, -z, np.ones_like(z)], axis=1)
    return (c2w @ pts.T).T[:, :3]


def _project(points: np.ndarray, frame: dict[str, Any], cam: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    w2c = np.linalg.inv(np.asarray(frame["transform_matrix"]))
    c = (w2c @ np.c_[points, np.ones(len(points))].T).T
    z = -c[:, 2]
    u = cam["fl_x"] * c[:, 0] / z + cam["cx"]
    v = -cam["fl_y"] * c[:, 1] / z + cam["cy"]
    return np.stack([v, u], axis=1), z


def test_a_point_seen_in_two_views_reprojects_onto_the_same_object_with_the_nerf_matrices(
        dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "nerf"
    res = subprocess.run([*SYNTHCTL, "export", str(dataset), "--format", "nerf", "--out", str(out)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    members = _members(dataset)
    checked = 0
    for key in KEYS:
        doc = json.loads((out / key / "transforms.json").read_text())
        assert len(doc["frames"]) == VIEWS
        assert all((out / key / f["file_path"]).is_file() for f in doc["frames"])
        meta = json.loads(members[f"{key}.json"])
        segs = [_png(members[f"{key}.view{k:02d}.seg.png"]) for k in range(VIEWS)]
        depths = [_png(members[f"{key}.view{k:02d}.depth.png"]).astype(np.float64) * meta["views"][k]["depthScale"]
                  for k in range(VIEWS)]
        for a, b in ((0, 1), (1, 2), (2, 0)):
            fa, fb = doc["frames"][a], doc["frames"][b]
            pix = np.argwhere(segs[a] > 0)
            world = _ray_points(depths[a], fa, doc, pix)
            vu, z = _project(world, fb, doc)
            rc = np.floor(vu).astype(int)
            inside = (z > 0) & (rc[:, 0] >= 0) & (rc[:, 0] < 64) & (rc[:, 1] >= 0) & (rc[:, 1] < 64)
            pix, rc, z = pix[inside], rc[inside], z[inside]
            seen = np.abs(depths[b][rc[:, 0], rc[:, 1]] - z) < 0.02 * z  # not hidden in view b
            ids_a = segs[a][pix[seen, 0], pix[seen, 1]]
            ids_b = segs[b][rc[seen, 0], rc[seen, 1]]
            if len(ids_a) < 20:
                continue
            checked += 1
            # Object edges may fall on a neighbouring pixel; the bulk must agree exactly.
            assert float(np.mean(ids_a == ids_b)) > 0.9, (key, a, b, float(np.mean(ids_a == ids_b)))
    assert checked >= 3


def test_a_multi_view_sample_re_renders_byte_identically_and_leaks_nothing(renderer: Any) -> None:
    from synth_render.sample import plan_sample, render_sample

    spec = builders.spec(
        SMALL, samples=8, seed=2, output={"uri": "file:///tmp/unused"}, image="r:t",
        categories=[{"name": "geometry", "weight": 1}], quality=OPEN_GATE,
        render={"resolutions": [{"width": 64, "height": 48}], "samples": {"min": 1, "max": 1}, "denoise": False,
                "passes": ["rgb", "segmentation", "depth"], "views": {"count": 2, "pattern": "random"}})
    first = render_sample(spec, plan_sample(spec, 3), renderer, dataset="t")
    counts = renderer.datablock_counts()
    render_sample(spec, plan_sample(spec, 4), renderer, dataset="t")
    again = render_sample(spec, plan_sample(spec, 3), renderer, dataset="t")
    assert renderer.datablock_counts() == counts
    assert first.files.keys() == again.files.keys() and "view01.seg.png" in first.files
    assert all(first.files[k] == again.files[k] for k in first.files)
    assert _png(first.files["view01.png"]).shape == (48, 64, 3)
