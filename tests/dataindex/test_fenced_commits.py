"""Fenced commits: conditional creates on disk and S3, the fallback for a store that ignores them,
a loser that never touches the winner's files, and two real processes racing on one shard."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from box.racing import race  # tests/reliability is on sys.path (tests/conftest.py)
from deaf_proxy import DeafProxy
from index_helpers import NOW, commit_shards, make_spec

from parallel_synth.dataset.index import write_index
from synth_contract import layout
from synth_contract.store import FileStore, S3Store, make_s3_client
from synth_render import manifests
from synth_render.manifests import commit, verify_shard


def test_file_store_creates_once_and_replaces_only_the_version_it_saw(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    assert store.create_bytes("m/a.json", b"first") is True
    assert store.create_bytes("m/a.json", b"second") is False
    assert store.read_bytes("m/a.json") == b"first"
    seen = store.etag("m/a.json")
    assert seen is not None and store.replace_bytes("m/a.json", b"third", etag=seen) is True
    assert store.replace_bytes("m/a.json", b"fourth", etag=seen) is False  # it changed since
    assert store.read_bytes("m/a.json") == b"third" and list(store.list("m")) == ["m/a.json"]
    assert store.conditional_writes() is True


def test_moto_honours_if_none_match_and_if_match(s3_client: Any, bucket: str, tmp_path: Path) -> None:
    """moto 5.2's S3 refuses a second ``If-None-Match: *`` create (412), also on a multipart upload."""
    store = S3Store(s3_client, bucket, "ds/v1", multipart_threshold=1024 * 1024)
    assert store.conditional_writes() is True
    assert store.create_bytes("manifests/00000000.json", b"winner") is True
    assert store.create_bytes("manifests/00000000.json", b"loser") is False
    assert store.read_bytes("manifests/00000000.json") == b"winner"
    big = tmp_path / "big.tar"
    big.write_bytes(b"x" * (6 * 1024 * 1024))  # multipart: the condition rides on CompleteMultipartUpload
    other = tmp_path / "other.tar"
    other.write_bytes(b"y" * (6 * 1024 * 1024))
    assert store.create_file("shards/00000000.tar", big) is True
    assert store.create_file("shards/00000000.tar", other) is False
    assert store.read_bytes("shards/00000000.tar") == big.read_bytes()
    seen = store.etag("shards/00000000.tar")
    assert seen is not None and store.replace_file("shards/00000000.tar", other, etag='"stale"') is False
    assert store.replace_file("shards/00000000.tar", other, etag=seen) is True
    assert store.read_bytes("shards/00000000.tar") == other.read_bytes()
    assert not any(".synth" in o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_store_that_ignores_the_header_is_detected_once_and_commits_fall_back_with_a_warning(
        s3_endpoint: str, s3_client: Any, bucket: str, aws_env: None, caplog: pytest.LogCaptureFixture) -> None:
    proxy = DeafProxy(s3_endpoint).start()
    try:
        store = S3Store(make_s3_client(endpoint_url=proxy.url), bucket, "ds/v1")
        spec = make_spec(f"s3://{bucket}")
        with caplog.at_level(logging.WARNING, logger="synth_contract.store"):
            commit_shards(spec, store)
        assert proxy.conditional_requests == 2  # the probe's two creates; then no header is sent at all
        warnings = [r.getMessage() for r in caplog.records if r.name == "synth_contract.store"]
        assert len(warnings) == 1 and bucket in warnings[0] and "ignores conditional writes" in warnings[0]
        assert all(json.loads(store.read_bytes(layout.manifest_path(s)) or b"")["commit"] == {"fenced": False}
                   for s in range(3))
        doc = write_index(spec, "ds", store, now=NOW)
        assert doc["commits"]["unfenced"] == 3 and "ignores conditional writes" in doc["commits"]["warning"]
        stored = json.loads(store.read_bytes(layout.DATASET_JSON) or b"")
        assert stored["commits"] == doc["commits"]
    finally:
        proxy.stop()


def _other_files(tmp_path: Path) -> tuple[FileStore, list[tuple[str, Any]], dict[str, Any]]:
    """A whole commit of shard 0 made elsewhere, as the (path, bytes) list and manifest ``commit`` takes."""
    spec = make_spec(tmp_path / "elsewhere")
    other = FileStore(tmp_path / "elsewhere" / "ds" / "v1")
    commit_shards(spec, other, [0])
    files = [(rel, other.read_bytes(rel)) for rel in (layout.shard_path(0), layout.index_part_path(0))]
    doc = json.loads(other.read_bytes(layout.manifest_path(0)) or b"")
    return other, files, doc


def test_a_loser_never_overwrites_the_winners_tar(tmp_path: Path) -> None:
    winner = FileStore(tmp_path / "bucket")
    commit_shards(make_spec(tmp_path / "bucket"), winner, [0])
    tar_before, tag_before = winner.read_bytes(layout.shard_path(0)), winner.etag(layout.shard_path(0))
    _, files, doc = _other_files(tmp_path)
    files[0] = (layout.shard_path(0), (files[0][1] or b"") + b"\0" * 512)  # the loser's tar differs
    out = commit(winner, 0, files, doc, grace=0.0)
    assert out.status == "already" and out.manifest["sha256"] == json.loads(
        winner.read_bytes(layout.manifest_path(0)) or b"")["sha256"]
    assert winner.read_bytes(layout.shard_path(0)) == tar_before and winner.etag(layout.shard_path(0)) == tag_before
    assert verify_shard(winner, 0, deep=True) == []


def test_a_dead_attempts_leftover_is_replaced_after_the_grace(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "bucket")
    store.write_bytes(layout.shard_path(0), b"half an upload of an attempt that died")
    _, files, doc = _other_files(tmp_path)
    waits: list[float] = []
    out = commit(store, 0, files, doc, grace=1.0, poll=0.25, sleep=waits.append)
    assert out.status == "committed" and out.placed[layout.shard_path(0)] == "replaced"
    assert sum(waits) == 1.0 and verify_shard(store, 0, deep=True) == []


def test_a_writer_that_commits_during_the_grace_wins(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "bucket")
    store.write_bytes(layout.shard_path(0), b"a live writer's tar, its manifest on the way")
    other, files, doc = _other_files(tmp_path)
    live = {rel: other.read_bytes(rel) or b"" for rel in (layout.shard_path(0), layout.index_part_path(0),
                                                          layout.manifest_path(0))}
    mine = [(layout.shard_path(0), b"this writer's different tar"), files[1]]

    def the_other_commits(_: float) -> None:
        for rel, data in live.items():
            store.write_bytes(rel, data)

    out = commit(store, 0, mine, doc, grace=5.0, sleep=the_other_commits)
    assert out.status == "already"
    assert store.read_bytes(layout.shard_path(0)) == live[layout.shard_path(0)]


def test_the_manifest_records_whether_its_commit_was_fenced(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "ds" / "v1")
    commit_shards(make_spec(tmp_path), store, [0])
    assert json.loads(store.read_bytes(layout.manifest_path(0)) or b"")["commit"] == {"fenced": True}
    assert manifests.COMMIT_GRACE_SECONDS > 0


RACE_ROUNDS = 4
"""Rounds per store in the test (the reliability report runs 20 on S3): each cycles the barrier point."""


@pytest.mark.slow
def test_two_processes_racing_on_a_local_shard_commit_it_exactly_once(tmp_path: Path) -> None:
    res = race(RACE_ROUNDS, root_of=lambda name: str(tmp_path / name), env={}, workdir=tmp_path)
    assert len(res.rounds) == RACE_ROUNDS and res.problems == [] and res.double_commits == 0


@pytest.mark.slow
def test_two_processes_racing_on_an_s3_shard_commit_it_exactly_once(s3_endpoint: str, bucket: str, aws_env: None,
                                                                     tmp_path: Path) -> None:
    env = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1"}
    import os

    os.environ["AWS_ENDPOINT_URL"] = s3_endpoint  # the test's own reads of the bucket (open_store)
    try:
        res = race(RACE_ROUNDS, root_of=lambda name: f"s3://{bucket}/{name}", env=env, workdir=tmp_path)
    finally:
        del os.environ["AWS_ENDPOINT_URL"]
    assert len(res.rounds) == RACE_ROUNDS and res.problems == [] and res.double_commits == 0


def test_a_commit_retried_after_a_lost_response_is_the_same_commit(tmp_path: Path) -> None:
    """The store took every file and the manifest, the answer was lost: the retry must not count as losing."""
    store = FileStore(tmp_path / "bucket")
    _, files, doc = _other_files(tmp_path)
    first = commit(store, 0, files, doc)
    again = commit(store, 0, files, doc)
    assert first.status == again.status == "committed"
    assert set(again.placed.values()) == {"same"} and verify_shard(store, 0, deep=True) == []
