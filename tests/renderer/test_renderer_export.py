"""``synthctl export`` on a rendered dataset: COCO loads in pycocotools with the seg.png masks,
BOP poses reproject the 3D box onto the 2D box, NeRF transforms invert the extrinsics; the
same export reads from S3. Also the Parquet index columns and the Hugging Face loader."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import builders
import numpy as np
import pytest
from builders import RENDER
from click.testing import CliRunner
from PIL import Image

from parallel_synth.dataset import export as ex
from parallel_synth.dataset.index import write_index
from synth_contract import layout
from synth_contract.store import FileStore, open_store
from synth_render import groundtruth, shards
from synth_render.worker import run_shard


def test_rle_matches_pycocotools() -> None:
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(3)
    for shape in ((5, 7), (64, 48), (1, 1)):
        m = rng.random(shape) > 0.6
        m[0, 0] = bool(shape[0] % 2)
        ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert ex.rle_string(ex.rle_counts(m)) == ref["counts"].decode()


def test_opengl_c2w_inverts_the_opencv_extrinsics() -> None:
    e = np.eye(4)
    e[:3, 3] = [0.0, 0.0, 5.0]  # camera 5 m behind the origin, looking down +z (OpenCV)
    c2w = np.asarray(ex.opengl_c2w(e))
    assert np.allclose(c2w[:3, 3], [0, 0, -5])
    assert np.allclose(c2w[:3, 2], [0, 0, -1])  # OpenGL looks down -z: the camera's +z axis points back


@pytest.fixture(scope="module")
def dataset(renderer: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    spec = builders.spec(RENDER, samples=4, categories=[{"name": "composition", "weight": 1}],
                     render={**RENDER["render"], "passes": ["rgb", "depth", "segmentation", "semantic"]})
    store = open_store((root / "ds" / "v1").as_uri())
    assert run_shard(spec, "ds", 0, store=store, renderer=renderer).status == "committed"
    write_index(spec, "ds", FileStore(root / "ds" / "v1"), now=datetime.now(UTC))
    return root / "ds" / "v1"


def _samples(root: Path) -> dict[str, tuple[dict[str, Any], np.ndarray]]:
    out = {}
    for key, files in shards.read_samples(root / layout.shard_path(0)):
        out[key] = (json.loads(files["json"]), np.asarray(Image.open(io.BytesIO(files["seg.png"]))))
    return out


@pytest.mark.blender
def test_coco_export_loads_in_pycocotools(dataset: Path, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from parallel_synth.commands.cli import cli

    res = CliRunner().invoke(cli, ["export", str(dataset), "--format", "coco", "--out", str(tmp_path),
                                   "--images"])
    assert res.exit_code == 0, res.output
    coco = COCO(str(tmp_path / "annotations.json"))
    vocab = {c["name"]: c["id"] for c in json.loads((dataset / "dataset.json").read_text())["classes"]}
    assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == {v: k for k, v in vocab.items()}
    samples = _samples(dataset)
    assert len(coco.getImgIds()) == len(samples)
    checked = 0
    for key, (meta, seg) in samples.items():
        img = coco.loadImgs(meta["index"])[0]
        assert img["file_name"] == f"{key}.png" and (tmp_path / "images" / img["file_name"]).is_file()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=meta["index"]))
        assert sorted(a["instance_id"] for a in anns) == sorted(o["id"] for o in meta["objects"])
        for a in anns:
            obj = next(o for o in meta["objects"] if o["id"] == a["instance_id"])
            assert np.array_equal(coco.annToMask(a).astype(bool), seg == a["instance_id"])
            x0, y0, x1, y1 = obj["bbox"]
            assert a["bbox"] == [x0, y0, x1 - x0 + 1, y1 - y0 + 1]
            assert a["category_id"] == vocab[obj["class"]]
            checked += 1
    assert checked > 0


@pytest.mark.blender
def test_bop_poses_reproject_the_3d_box_onto_the_2d_box(dataset: Path, tmp_path: Path) -> None:
    stats = ex.export_dataset(FileStore(dataset), "bop", tmp_path)
    scene = tmp_path / "train_pbr" / "000000"
    gt = json.loads((scene / "scene_gt.json").read_text())
    cams = json.loads((scene / "scene_camera.json").read_text())
    assert stats.samples == 4 and stats.annotations > 0
    for _key, (meta, seg) in _samples(dataset).items():
        im = str(meta["index"])
        k = np.asarray(cams[im]["cam_K"]).reshape(3, 3)
        for n, (g, obj) in enumerate(zip(gt[im], meta["objects"], strict=True)):
            r, t = np.asarray(g["cam_R_m2c"]).reshape(3, 3), np.asarray(g["cam_t_m2c"]) / 1000.0
            pose = np.asarray(obj["pose"])
            # the box in the object's frame, then back into the camera through the BOP pose
            corners_cam = groundtruth.box_corners(obj["box3d"])
            corners_obj = (corners_cam - pose[:3, 3]) @ pose[:3, :3]
            uvw = (k @ (corners_obj @ r.T + t).T).T
            uv = uvw[:, :2] / uvw[:, 2:3]
            x0, y0, x1, y1 = obj["bbox"]
            assert uv[:, 0].min() <= x0 + 1 and uv[:, 0].max() >= x1 and uv[:, 1].min() <= y0 + 1
            assert uv[:, 1].max() >= y1
            mask = np.asarray(Image.open(scene / "mask_visib" / f"{int(im):06d}_{n:06d}.png")) > 0
            assert np.array_equal(mask, seg == obj["id"])


@pytest.mark.blender
def test_nerf_export_and_s3_source(dataset: Path, tmp_path: Path, s3_client: Any, bucket: str,
                                   s3_endpoint: str) -> None:
    for path in dataset.rglob("*"):
        if path.is_file():
            s3_client.upload_file(str(path), bucket, f"data/{path.relative_to(dataset).as_posix()}")
    from synth_contract.store import open_store

    files = open_store(f"s3://{bucket}/data", endpoint_url=s3_endpoint)
    stats = ex.export_dataset(files, "nerf", tmp_path)
    assert stats.samples == 4
    for key, (meta, _) in _samples(dataset).items():
        doc = json.loads((tmp_path / key / "transforms.json").read_text())
        frame = doc["frames"][0]
        assert (tmp_path / key / frame["file_path"]).is_file()
        c2w = np.asarray(frame["transform_matrix"]) @ np.diag([1.0, -1.0, -1.0, 1.0])
        assert np.allclose(np.linalg.inv(c2w), meta["camera"]["extrinsics"], atol=1e-5)
        assert doc["fl_x"] == pytest.approx(meta["camera"]["intrinsics"][0][0])


def test_export_refuses_an_empty_folder(tmp_path: Path) -> None:
    from parallel_synth.commands.cli import cli

    (tmp_path / "ds").mkdir()  # --out outside the folder it reads (export refuses to write into a dataset)
    res = CliRunner().invoke(cli, ["export", str(tmp_path / "ds"), "--format", "coco", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "no committed shards" in res.output


@pytest.mark.blender
def test_index_columns_and_hugging_face_loader(dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Hugging Face recipe, offline: every sample with its caption and masks."""
    import pyarrow.parquet as pq

    table = pq.read_table(dataset / "index" / "metadata.parquet")
    rows = table.to_pylist()
    assert {"caption", "classIds", "passed", "quality"} <= set(table.column_names)
    metas = {k: m for k, (m, _) in _samples(dataset).items()}
    for row in rows:
        meta = metas[row["key"]]
        assert row["caption"] == meta["caption"] and row["classIds"] == meta["classIds"]

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    ds = load_dataset("webdataset", data_files={"train": str(dataset / "shards" / "*.tar")}, split="train",
                      cache_dir=str(tmp_path / "hf"))
    assert len(ds) == len(metas)
    first = ds[0]
    assert first["json"]["caption"] == first["txt"] == metas[first["__key__"]]["caption"]
    seg = np.asarray(first["seg.png"])
    assert seg.shape == (64, 64) and set(np.unique(seg)) - {0} == {o["id"] for o in first["json"]["objects"]}
