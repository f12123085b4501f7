"""Hostile datasets: `synthctl validate` finds the junk, and neither it nor `preview` ever shows a traceback.

Every case starts from a sound dataset written by the fake renderer and damages one thing.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import fakerender
import numpy as np
import pytest
from click.testing import CliRunner
from local_helpers import recommit
from PIL import Image

from parallel_synth.commands.cli import cli
from parallel_synth.dataset.checks import CheckOptions, check_dataset
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import FileStore

# --------------------------------------------------------------------------- helpers


def damage_sample(files: FileStore, spec: SynthDatasetSpec, index: int,
                  change: Callable[[dict[str, bytes]], None], *, every: bool = False) -> None:
    """Re-write sample ``index``'s shard with ``change`` applied to its members (to all of them: ``every``)."""
    shard = planning.shard_of(spec, index)
    items = []
    for i in planning.shard_range(spec, shard):
        members = fakerender.render_sample(spec, i, shard)
        if i == index or every:
            change(members)
        items.append((planning.sample_key(i), members))
    buf = io.BytesIO()
    fakerender.write_shard_tar(spec, shard, buf, items)
    recommit(files, shard, buf.getvalue())


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def gif(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, format="GIF")
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, *, body: bytes = b"", depth: int = 8, ctype: int = 2) -> bytes:
    """A PNG whose IHDR is valid, followed by ``body`` as its image data (garbage if you like)."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def _meta(members: dict[str, bytes]) -> dict[str, object]:
    return json.loads(members["json"])  # type: ignore[no-any-return]


def _set_meta(members: dict[str, bytes], meta: dict[str, object]) -> None:
    members["json"] = json.dumps(meta).encode()


def _seg_extra_id(m: dict[str, bytes]) -> None:
    seg = np.asarray(Image.open(io.BytesIO(m["seg.png"]))).copy()
    seg[0, 0] = 9
    m["seg.png"] = png(seg)


def _object_without_pixels(m: dict[str, bytes]) -> None:
    meta = _meta(m)
    meta["objects"].append({"id": 7, "class": "ghost", "bbox": [1, 1, 2, 2]})  # type: ignore[attr-defined]
    _set_meta(m, meta)


IMAGE_JUNK: list[tuple[str, Callable[[dict[str, bytes]], None], str]] = [
    ("rgb is text", lambda m: m.update(png=b"this is not an image at all, just some text" * 3),
     "000000000034.png is not a PNG"),
    ("seg is a GIF", lambda m: m.update({"seg.png": gif(np.zeros((32, 32)))}), "000000000034.seg.png is a GIF"),
    ("depth is a GIF", lambda m: m.update({"depth.png": gif(np.zeros((32, 32)))}),
     "000000000034.depth.png is a GIF"),
    ("png header over garbage", lambda m: m.update(png=png_header_only(32, 32, body=b"\x00garbage" * 50)),
     "000000000034.png cannot be decoded"),
    ("60000x60000 png", lambda m: m.update(png=png_header_only(60000, 60000, body=zlib.compress(b"\0" * 4096))),
     "is 60000x60000, more than"),
    ("8-bit depth", lambda m: m.update({"depth.png": png(np.zeros((32, 32), np.uint8))}),
     "000000000034.depth.png is 8-bit grayscale, the depth.png pass must be 16-bit single channel"),
    ("rgb seg", lambda m: m.update({"seg.png": png(np.zeros((32, 32, 3), np.uint8))}),
     "the seg.png pass must be 8- or 16-bit single channel"),
    ("depth of another size", lambda m: m.update({"depth.png": png(np.zeros((16, 32), np.uint16))}),
     "000000000034.depth.png is 32x16, the metadata says 32x32"),
    ("seg id not in objects", _seg_extra_id, "seg.png has ids [9] that are not in objects"),
    ("object without pixels", _object_without_pixels, "objects [7] have no pixels in 000000000034.seg.png"),
]


@pytest.mark.parametrize(("case", "change", "words"), IMAGE_JUNK, ids=[c[0] for c in IMAGE_JUNK])
def test_validate_decodes_every_image(dataset: FileStore, tiny_spec: SynthDatasetSpec, case: str,
                                      change: Callable[[dict[str, bytes]], None], words: str) -> None:
    damage_sample(dataset, tiny_spec, 34, change)
    report = check_dataset(dataset)
    bad = [str(p) for p in report.problems if p.code == "bad-image"]
    assert any(words in p for p in bad), (case, bad)
    assert all("000000000034" in p for p in bad), bad  # the other 109 samples are sound


def test_sound_images_raise_no_image_problem(dataset: FileStore) -> None:
    assert [p for p in check_dataset(dataset).problems if p.code == "bad-image"] == []


def test_dataset_json_that_is_a_list_is_a_problem(dataset: FileStore) -> None:
    (dataset.root / "dataset.json").write_text("[1, 2, 3]")
    res = CliRunner().invoke(cli, ["validate", str(dataset.root)])
    assert res.exit_code == 1, res.output
    assert "[bad-dataset-json] dataset.json: not a JSON object (a list)" in res.output


@pytest.mark.timeout(60)  # before the listing bounded it, this walked 10^11 shard names
def test_a_claim_of_1e11_samples_is_checked_in_bounded_time(dataset: FileStore) -> None:
    doc = json.loads((dataset.root / "dataset.json").read_text())
    doc["spec"].update(samples=10**11, shardSize=1)
    (dataset.root / "dataset.json").write_text(json.dumps(doc))
    started = time.monotonic()
    report = check_dataset(dataset)
    assert time.monotonic() - started < 30
    missing = [p for p in report.problems if p.code == "missing-shard"]
    assert missing and "99,999,999,989 shards" in missing[-1].message
    assert report.problem_count >= 10**11 - 11


def test_sample_checks_a_random_subset(dataset: FileStore, tiny_spec: SynthDatasetSpec) -> None:
    report = check_dataset(dataset, options=CheckOptions(sample=3, seed=1))
    assert report.shards_checked == 3 and report.sampled
    assert not [p for p in report.problems if p.code == "category-balance"]  # not judged on a sample
    res = CliRunner().invoke(cli, ["validate", str(dataset.root), "--sample", "2", "--seed", "4"])
    assert "2/11 shards (a random sample)" in res.output
    # a damaged shard is found when the pick includes it
    damage_sample(dataset, tiny_spec, 34, lambda m: m.update(png=b"text"))
    hits = [check_dataset(dataset, options=CheckOptions(sample=1, seed=s)) for s in range(40)]
    assert any(any(p.code == "bad-image" for p in r.problems) for r in hits)


# --------------------------------------------------------------------------- no tracebacks


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def _put(rel: str, data: bytes) -> Callable[[FileStore, SynthDatasetSpec], None]:
    def go(files: FileStore, spec: SynthDatasetSpec) -> None:
        (files.root / rel).write_bytes(data)
    return go


def _shard_is_a_directory(files: FileStore, spec: SynthDatasetSpec) -> None:
    for shard in range(planning.shard_count(spec)):
        tar = files.root / layout.shard_path(shard)
        tar.unlink()
        tar.mkdir()


def _every_sample(change: Callable[[dict[str, bytes]], None]) -> Callable[[FileStore, SynthDatasetSpec], None]:
    def go(files: FileStore, spec: SynthDatasetSpec) -> None:
        for shard in range(planning.shard_count(spec)):
            damage_sample(files, spec, planning.shard_range(spec, shard).start, change, every=True)
    return go


def _meta_fields(**fields: object) -> Callable[[dict[str, bytes]], None]:
    def go(m: dict[str, bytes]) -> None:
        meta = _meta(m)
        meta.update(fields)
        _set_meta(m, meta)
    return go


HOSTILE: list[tuple[str, Callable[[FileStore, SynthDatasetSpec], None]]] = [
    ("dataset.json nested 100000 deep", _put("dataset.json", _nested(100_000))),
    ("dataset.json spec nested", _put("dataset.json", b'{"spec": {"samples": ' + _nested(100_000) + b"}}")),
    ("dataset.json a list", _put("dataset.json", b"[1, 2]")),
    ("dataset.json not JSON", _put("dataset.json", b"\xff\xfe garbage")),
    ("dataset.json wrong types", _put("dataset.json", b'{"name": 5, "spec": {"samples": "x"}, "samples": 3}')),
    ("dataset.json spec of 1e11 samples", _put("dataset.json", json.dumps(
        {"name": "t", "spec": {"samples": 10**11, "shardSize": 1, "output": {"uri": "file:///x"}, "image": "r"},
         "samples": {"completed": 1}}).encode())),
    ("manifest nested", _put(layout.manifest_path(2), _nested(100_000))),
    ("manifest wrong types", _put(layout.manifest_path(2), b'{"shard": "x", "samples": [], "bytes": "many", '
                                                               b'"sha256": 5, "categories": 7}')),
    ("shard path is a directory", _shard_is_a_directory),
    ("metadata nested", _every_sample(lambda m: m.update(json=_nested(100_000)))),
    ("metadata a list", _every_sample(lambda m: m.update(json=b"[]"))),
    ("metadata wrong types", _every_sample(_meta_fields(objects=[{"id": "x", "bbox": ["a", None, {}, 1e308]}, 5],
                                                        quality="high", render=[1], category={"a": 1},
                                                        camera=[]))),
    ("metadata inf boxes", _every_sample(lambda m: m.update(json=m["json"].replace(b'"bbox": [', b'"bbox": [Infinity, ')))),
    ("rgb text", _every_sample(lambda m: m.update(png=b"hello"))),
    ("rgb decompression bomb", _every_sample(lambda m: m.update(
        png=png_header_only(60000, 60000, body=zlib.compress(b"\0" * 100_000))))),
    ("rgb garbage body", _every_sample(lambda m: m.update(png=png_header_only(32, 32, body=b"junk" * 99)))),
    ("seg 65535 ids", _every_sample(lambda m: m.update({"seg.png": png(
        np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 63)}))),
    ("seg gif", _every_sample(lambda m: m.update({"seg.png": gif(np.ones((32, 32)))}))),
    ("truncated tars", lambda f, s: [(f.root / layout.shard_path(i)).write_bytes(
        (f.root / layout.shard_path(i)).read_bytes()[:700]) for i in range(planning.shard_count(s))]),
]


@pytest.mark.parametrize(("case", "damage"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_datasets_give_a_message_not_a_traceback(dataset: FileStore, tiny_spec: SynthDatasetSpec,
                                                         tmp_path: Path, case: str,
                                                         damage: Callable[[FileStore, SynthDatasetSpec], None]) -> None:
    damage(dataset, tiny_spec)
    runner = CliRunner()
    for args in (["validate", str(dataset.root)], ["preview", str(dataset.root), "--out", str(tmp_path / "p.png")]):
        res = runner.invoke(cli, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), (case, args[0], res.exception)
        assert "Traceback" not in res.output, (case, args[0], res.output)
        assert res.exit_code in (0, 1, 2), (case, args[0], res.exit_code)
        if args[0] == "validate":
            assert res.exit_code == 1, (case, res.output)


LOCATIONS = [
    ("http uri", ["http://example.com/data"], "use a path, file:///path or s3://bucket/prefix"),
    ("unreachable s3 endpoint", ["s3://bucket/ds/v1", "--endpoint-url", "http://127.0.0.1:9"], "cannot read s3://"),
]


@pytest.mark.parametrize(("case", "args", "words"), LOCATIONS, ids=[c[0] for c in LOCATIONS])
def test_unusable_locations_exit_2_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str,
                                               args: list[str], words: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    for cmd in (["validate", *args], ["preview", *args, "--out", str(tmp_path / "p.png")]):
        res = CliRunner().invoke(cli, cmd)
        assert res.exit_code == 2, (case, cmd[0], res.output, res.exception)
        assert words in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
