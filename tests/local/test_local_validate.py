"""`synthctl validate` catches what a careful user would: every kind of damage, one test each."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import fakerender
import pytest
from click.testing import CliRunner
from local_helpers import recommit

from parallel_synth.commands.cli import cli
from parallel_synth.dataset.checks import CheckOptions, check_dataset
from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import FileStore


def codes(files: FileStore, **opts: object) -> set[str]:
    report = check_dataset(files, options=CheckOptions(**opts))  # type: ignore[arg-type]
    return {p.code for p in report.problems}


def test_a_sound_dataset_passes(dataset: FileStore) -> None:
    report = check_dataset(dataset)
    assert report.ok, report.problems
    assert report.samples == 110
    assert report.shards_checked == 11
    assert report.pass_rate == 1.0


def test_deleted_shard(dataset: FileStore) -> None:
    (dataset.root / layout.shard_path(4)).unlink()
    (dataset.root / layout.manifest_path(4)).unlink()
    report = check_dataset(dataset)
    assert any(p.code == "missing-shard" and "00000004" in p.where for p in report.problems)
    assert "category-balance" not in {p.code for p in report.problems}  # incomplete: not judged twice


def test_uncommitted_tar_without_manifest(dataset: FileStore) -> None:
    (dataset.root / layout.manifest_path(2)).unlink()
    assert "missing-manifest" in codes(dataset)


@pytest.mark.parametrize("cut", ["middle", "member-boundary", "end-marker"])
def test_truncated_tar(dataset: FileStore, cut: str) -> None:
    path = dataset.root / layout.shard_path(3)
    data = path.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    at = {
        "middle": len(data) // 2 + 100,
        "member-boundary": members[4].offset,  # a header boundary: tarfile itself stops quietly
        "end-marker": members[-1].offset_data + members[-1].size + 100,
    }[cut]
    path.write_bytes(data[:at])
    found = codes(dataset)
    assert {"truncated-tar", "sha256-mismatch", "size-mismatch"} <= found


def test_tampered_manifest(dataset: FileStore) -> None:
    man_path = dataset.root / layout.manifest_path(5)
    man = json.loads(man_path.read_text())
    man["sha256"] = "0" * 64
    man["samples"] = 9
    man_path.write_text(json.dumps(man))
    found = codes(dataset)
    assert {"sha256-mismatch", "bad-manifest", "sample-count"} <= found


def test_tampered_member_changes_hash(dataset: FileStore) -> None:
    path = dataset.root / layout.shard_path(1)
    data = bytearray(path.read_bytes())
    data[2000] ^= 0xFF  # inside the first member's data
    path.write_bytes(bytes(data))
    assert "sha256-mismatch" in codes(dataset)


def test_duplicated_key_across_shards(dataset: FileStore, tiny_spec: SynthDatasetSpec) -> None:
    own = [(planning.sample_key(i), fakerender.render_sample(tiny_spec, i, 1)) for i in range(10, 20)]
    stolen = (planning.sample_key(3), fakerender.render_sample(tiny_spec, 3, 0))
    buf = io.BytesIO()
    fakerender.write_shard_tar(tiny_spec, 1, buf, [*own[:9], stolen])
    recommit(dataset, 1, buf.getvalue())
    report = check_dataset(dataset)
    dup = [p for p in report.problems if p.code == "duplicate-key"]
    assert dup and "000000000003" in dup[0].where and "belongs to shard 0" in dup[0].message


def test_duplicated_key_within_a_shard(dataset: FileStore, tiny_spec: SynthDatasetSpec) -> None:
    items = [(planning.sample_key(i), fakerender.render_sample(tiny_spec, i, 0)) for i in range(10)]
    buf = io.BytesIO()
    fakerender.write_shard_tar(tiny_spec, 0, buf, [*items, items[4]])
    recommit(dataset, 0, buf.getvalue())
    assert "duplicate-key" in codes(dataset)


def _hostile_tar(tiny_spec: SynthDatasetSpec, member: tarfile.TarInfo, payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    fakerender.write_shard_tar(tiny_spec, 6, buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as src, io.BytesIO() as out:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
            for info in src.getmembers():
                dst.addfile(info, src.extractfile(info))
            dst.addfile(member, io.BytesIO(payload) if payload else None)
        return out.getvalue()


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("/etc/cron.d/evil", tarfile.REGTYPE, "absolute path"),
        ("../../evil.png", tarfile.REGTYPE, "'..'"),
        ("000000000061.evil", tarfile.SYMTYPE, "link"),
        ("000000000062.evil", tarfile.LNKTYPE, "link"),
        ("000000000063.dev", tarfile.CHRTYPE, "regular"),
    ],
)
def test_hostile_members(dataset: FileStore, tiny_spec: SynthDatasetSpec, name: str, kind: bytes,
                         reason: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    payload = b"x" * 10 if kind == tarfile.REGTYPE else b""
    info.size = len(payload)
    recommit(dataset, 6, _hostile_tar(tiny_spec, info, payload))
    report = check_dataset(dataset)
    hostile = [p for p in report.problems if p.code == "hostile-member"]
    assert hostile and reason in hostile[0].message


def test_huge_member(dataset: FileStore, tiny_spec: SynthDatasetSpec) -> None:
    info = tarfile.TarInfo("000000000060.blob")
    payload = b"\0" * 5000
    info.size = len(payload)
    recommit(dataset, 6, _hostile_tar(tiny_spec, info, payload))
    report = check_dataset(dataset, options=CheckOptions(max_member_bytes=4096))
    assert any(p.code == "hostile-member" and "huge" in p.message for p in report.problems)


def test_incomplete_metadata(dataset: FileStore, tiny_spec: SynthDatasetSpec) -> None:
    items = []
    for i in range(70, 80):
        members = fakerender.render_sample(tiny_spec, i, 7)
        if i == 72:
            meta = json.loads(members["json"])
            del meta["camera"]
            meta["objects"][0]["bbox"] = [5, 5, 4000, 6]
            members["json"] = json.dumps(meta).encode()
        if i == 73:
            del members["seg.png"]
        items.append((planning.sample_key(i), members))
    buf = io.BytesIO()
    fakerender.write_shard_tar(tiny_spec, 7, buf, items)
    recommit(dataset, 7, buf.getvalue())
    report = check_dataset(dataset)
    msgs = [str(p) for p in report.problems]
    assert any("missing field 'camera'" in m for m in msgs)
    assert any("outside the 32x32 frame" in m for m in msgs)
    assert any("000000000073.seg.png" in m for m in msgs)


def test_quality_pass_rate(dataset: FileStore) -> None:
    report = check_dataset(dataset, options=CheckOptions(min_quality=0.99))
    assert "quality" in {p.code for p in report.problems}
    assert report.pass_rate is not None and report.pass_rate < 0.9


def test_category_balance_against_the_spec(dataset: FileStore, tiny_spec: SynthDatasetSpec) -> None:
    skewed = tiny_spec.model_copy(update={"categories": [
        c.model_copy(update={"weight": 5.0 if c.name == "geometry" else 1.0}) for c in tiny_spec.categories
    ]})
    report = check_dataset(dataset, spec=skewed)
    assert any(p.code == "category-balance" and p.where == "geometry" for p in report.problems)


def test_missing_index(dataset: FileStore) -> None:
    (dataset.root / "index" / "metadata.parquet").unlink()
    assert "missing-index" in codes(dataset)


def test_cli_exit_codes_and_json_report(dataset: FileStore, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["validate", str(dataset.root)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    (dataset.root / layout.shard_path(9)).unlink()
    report_file = tmp_path / "report.json"
    bad = runner.invoke(cli, ["validate", dataset.uri, "--report", str(report_file), "--min-quality", "0.7"])
    assert bad.exit_code == 1
    assert "missing-shard" in bad.output and "00000009" in bad.output
    doc = json.loads(report_file.read_text())
    assert doc["ok"] is False and doc["problemCount"] >= 1
    assert doc["quality"]["minScore"] == 0.7
    assert doc["categories"]["geometry"]["target"] == 10


def test_validate_reads_s3(dataset: FileStore) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="synth")
        for path in sorted(dataset.root.rglob("*")):
            if path.is_file():
                s3.upload_file(str(path), "synth", f"data/tiny/v1/{path.relative_to(dataset.root)}")
        ok = CliRunner().invoke(cli, ["validate", "s3://synth/data/tiny/v1"])
        assert ok.exit_code == 0, ok.output
        s3.delete_object(Bucket="synth", Key="data/tiny/v1/manifests/00000003.json")
        bad = CliRunner().invoke(cli, ["validate", "s3://synth/data/tiny/v1"])
        assert bad.exit_code == 1 and "missing-manifest" in bad.output


@pytest.mark.parametrize(
    ("name", "key", "ext"),
    [
        ("000000000012.png", "000000000012", "png"),
        ("000000000012.seg.png", "000000000012", "seg.png"),
        ("dir/000000000012.depth.png", "dir/000000000012", "depth.png"),
        ("noext", "noext", ""),
    ],
)
def test_split_key_groups_like_webdataset(name: str, key: str, ext: str) -> None:
    from parallel_synth.dataset.tars import split_key

    assert split_key(name) == (key, ext)


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    from builders import LOCAL, wire, write_manifest

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    manifest = write_manifest(tmp_path / "m.yaml", wire(LOCAL, output=tmp_path), name="tiny")
    res = CliRunner().invoke(cli, ["generate", str(manifest), "--out", str(blocker / "data")])
    assert res.exit_code == 2  # the output cannot be written: DESIGN's "input cannot be read" class
    assert "cannot write to" in res.output
