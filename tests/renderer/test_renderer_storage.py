"""Stores (local folder and S3 through a local moto server) and deterministic shard tars."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from synth_contract import layout
from synth_contract.store import FileStore, S3Store, new_file_mode, open_store
from synth_render import shards


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "file":
        return open_store((tmp_path / "root").as_uri())
    client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("bucket")
    return S3Store(client, bucket, "data/ds/v1", multipart_threshold=5 * 1024 * 1024)


def test_roundtrip_and_missing_objects(store: Any, tmp_path: Path) -> None:
    assert store.read_bytes("manifests/00000000.json") is None
    assert not store.exists("manifests/00000000.json") and store.size("x") is None
    store.write_bytes("manifests/00000000.json", b"{}")
    assert store.read_bytes("manifests/00000000.json") == b"{}"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (12 * 4096))  # 12 MiB: multipart on S3 (5 MiB threshold)
    store.upload_file("shards/00000000.tar", big)
    assert store.size("shards/00000000.tar") == big.stat().st_size
    back = tmp_path / "back.bin"
    assert store.download_file("shards/00000000.tar", back) and back.read_bytes() == big.read_bytes()
    assert not store.download_file("nope", tmp_path / "nope")
    store.delete("shards/00000000.tar")
    store.delete("shards/00000000.tar")  # deleting a missing object is fine
    assert not store.exists("shards/00000000.tar")


def test_streams_and_folder_listings(store: Any) -> None:
    for shard in (2, 0, 1):
        store.write_bytes(layout.manifest_path(shard), b'{"shard": %d}' % shard)
    store.write_bytes("manifests/deeper/00000003.json", b"{}")  # not directly in the folder: not listed
    assert list(store.list("manifests")) == [layout.manifest_path(s) for s in (0, 1, 2)]
    assert list(store.list("checkpoints")) == []
    with store.open(layout.manifest_path(1)) as stream:
        assert stream.read() == b'{"shard": 1}'
    with pytest.raises(FileNotFoundError):
        store.open(layout.manifest_path(9))


def test_open_store_picks_the_implementation(tmp_path: Path, s3_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store(tmp_path.as_uri()), FileStore)
    monkeypatch.chdir(tmp_path)
    plain = open_store("data/ds/v1")  # a path, as synthctl validate/preview/export take it
    assert isinstance(plain, FileStore) and plain.root == tmp_path.resolve() / "data/ds/v1"
    assert plain.uri == (tmp_path.resolve() / "data/ds/v1").as_uri()
    s3 = open_store("s3://bucket-x/some/prefix", client=s3_client)
    assert isinstance(s3, S3Store) and s3.bucket == "bucket-x" and s3.prefix == "some/prefix"
    assert s3.uri == "s3://bucket-x/some/prefix" and open_store("s3://bucket-x", client=s3_client).uri == "s3://bucket-x"
    for bad in ("gs://bucket/x", "http://example.com/data"):
        with pytest.raises(ValueError, match="unsupported scheme: use a path, file:///path or s3://bucket/prefix"):
            open_store(bad)


def test_file_store_refuses_paths_outside_its_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileStore(tmp_path).write_bytes("../escape", b"x")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError):
        FileStore(tmp_path / "root").read_bytes("link/secret")


def test_file_store_writes_atomically_with_the_usual_file_mode(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.write_bytes("index/metadata.jsonl", b"{}\n")
    (tmp_path / "local.bin").write_bytes(b"x" * 10)
    store.upload_file("shards/00000000.tar", tmp_path / "local.bin")
    for rel in ("index/metadata.jsonl", "shards/00000000.tar"):
        assert (tmp_path / rel).stat().st_mode & 0o777 == new_file_mode()  # not mkstemp's 0600
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["metadata.jsonl"]  # no temp file left


def _samples(n: int) -> list[tuple[str, dict[str, bytes]]]:
    return [(f"{i:012d}", {"json": b'{"i": %d}' % i, "png": b"P" * (100 + i), "seg.png": b"S" * 3})
            for i in range(n)]


def test_identical_samples_give_an_identical_tar(tmp_path: Path) -> None:
    digests = []
    for run in range(2):
        w = shards.ShardWriter(tmp_path / f"{run}.tar")
        for key, files in _samples(3):
            w.add(key, files)
        digests.append(w.finish())
    assert digests[0] == digests[1]
    with tarfile.open(tmp_path / "0.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members][:3] == ["000000000000.png", "000000000000.json", "000000000000.seg.png"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(0, 0, 0, "", 0o644)}
    assert list(shards.read_samples(tmp_path / "0.tar")) == _samples(3)


def test_a_snapshot_is_the_prefix_of_the_final_tar(tmp_path: Path) -> None:
    w = shards.ShardWriter(tmp_path / "s.tar")
    for key, files in _samples(2):
        w.add(key, files)
    n, size, digest = w.snapshot(tmp_path / "ckpt.tar")
    assert n == 2 and size == (tmp_path / "ckpt.tar").stat().st_size
    assert shards.sha256_file(tmp_path / "ckpt.tar") == digest
    assert list(shards.read_samples(tmp_path / "ckpt.tar")) == _samples(2)
    resumed = shards.ShardWriter(tmp_path / "r.tar")
    for key, files in shards.read_samples(tmp_path / "ckpt.tar"):
        resumed.add(key, files)
    for key, files in _samples(3)[2:]:
        resumed.add(key, files)
        w.add(key, files)
    assert resumed.finish() == w.finish()


def test_keys_with_dots_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        shards.ShardWriter(tmp_path / "x.tar").add("a.b", {"json": b"{}"})
