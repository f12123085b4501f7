"""The shard worker: commit, skip, preemption and resume, corrupt state, exit codes.

The fake renderer (``fake_renderer.py``) stands in for Blender; the tests that need real renders
(across processes, or against ``synthctl render-sample``) are marked ``blender``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import builders
import pytest
from builders import RENDER, wire, write_manifest
from fake_renderer import FakeRenderer

from synth_contract import layout, planning
from synth_contract.exitcodes import EXIT_BAD_CONFIG, EXIT_SIGTERM
from synth_contract.store import S3Store, open_store
from synth_render import pipeline, shards
from synth_render.manifests import verify_shard
from synth_render.worker import run_shard

FAKE_WORKER = str(Path(__file__).with_name("fake_worker.py"))


@pytest.fixture
def fake() -> FakeRenderer:
    return FakeRenderer()


class _NoRender:
    device, engine_version = "none", "none"

    def render(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a committed shard must not render anything")


def _tar_samples(store: Any, shard: int) -> list[tuple[str, dict[str, bytes]]]:
    return list(shards.read_samples(store.read_bytes(layout.shard_path(shard))))


def test_a_shard_commits_to_s3_with_its_manifest_last(fake: FakeRenderer, s3_client: Any, bucket: str) -> None:
    spec = builders.spec(RENDER, output={"uri": f"s3://{bucket}/data"})
    store = S3Store(s3_client, bucket, "data/ds/v1")
    events: list[dict[str, Any]] = []
    out = run_shard(spec, "ds", 1, store=store, progress=events.append, renderer=fake)
    assert out.status == "committed" and out.samples == 4 and out.exit_code == 0
    assert [e["index"] for e in events] == [4, 5, 6, 7]
    assert {"index", "category", "score", "seconds"} <= set(events[0])
    manifest = json.loads(store.read_bytes(layout.manifest_path(1)))
    samples = _tar_samples(store, 1)
    assert [k for k, _ in samples] == [planning.sample_key(i) for i in range(4, 8)]
    assert manifest["samples"] == 4 and manifest["firstIndex"] == 4
    assert manifest["keys"] == {"first": "000000000004", "last": "000000000007"}
    assert sum(manifest["categories"].values()) == 4 and len(manifest["quality"]["scores"]) == 4
    for key in ("sha256", "bytes", "timings", "device", "engine", "engineVersion"):
        assert key in manifest
    meta = json.loads(samples[0][1]["json"])
    assert meta["index"] == 4 and meta["shard"] == 1 and meta["seed"] == planning.sample_seed(11, "1", 4)
    assert meta["category"] == planning.category_of(spec, 4)
    assert verify_shard(store, 1, deep=True) == []
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["data/ds/v1/index/parts/00000001.parquet", "data/ds/v1/manifests/00000001.json",
                            "data/ds/v1/shards/00000001.tar"]


def test_a_committed_shard_is_skipped(fake: FakeRenderer, tmp_path: Path) -> None:
    spec = builders.spec(RENDER)
    store = open_store(tmp_path.as_uri())
    first = run_shard(spec, "ds", 0, store=store, renderer=fake)
    again = run_shard(spec, "ds", 0, store=store, renderer=_NoRender())
    assert first.status == "committed" and again.status == "skipped" and again.exit_code == 0
    assert again.samples == 4


def test_a_shard_committed_by_another_pod_while_rendering_is_not_committed_again(fake: FakeRenderer,
                                                                                  tmp_path: Path) -> None:
    """A replaced pod that kept running (a partitioned node's zombie) must not overwrite the commit."""
    spec = builders.spec(RENDER)
    other = open_store((tmp_path / "replacement").as_uri())
    run_shard(spec, "ds", 0, store=other, renderer=fake)
    store = open_store((tmp_path / "bucket").as_uri())

    def replacement_commits(event: dict[str, Any]) -> None:
        if not store.exists(layout.manifest_path(0)):
            for path in (layout.shard_path(0), layout.index_part_path(0), layout.manifest_path(0)):
                store.write_bytes(path, other.read_bytes(path) or b"")

    zombie = run_shard(spec, "ds", 0, store=store, progress=replacement_commits, renderer=fake)
    assert zombie.status == "skipped" and zombie.exit_code == 0
    assert store.read_bytes(layout.manifest_path(0)) == other.read_bytes(layout.manifest_path(0))


@pytest.mark.parametrize("damage", ["corrupt-manifest", "truncated-tar", "missing-tar"])
def test_a_corrupted_commit_is_detected_and_rendered_again(fake: FakeRenderer, tmp_path: Path, damage: str) -> None:
    spec = builders.spec(RENDER)
    store = open_store(tmp_path.as_uri())
    first = run_shard(spec, "ds", 0, store=store, renderer=fake)
    tar = tmp_path / layout.shard_path(0)
    if damage == "corrupt-manifest":
        (tmp_path / layout.manifest_path(0)).write_text('{"shard": 0, "sha2')
    elif damage == "truncated-tar":
        tar.write_bytes(tar.read_bytes()[:1000])
    else:
        tar.unlink()
    assert verify_shard(store, 0) != []
    again = run_shard(spec, "ds", 0, store=store, renderer=fake)
    assert again.status == "committed"
    assert again.manifest is not None and first.manifest is not None
    assert again.manifest["sha256"] == first.manifest["sha256"]
    assert verify_shard(store, 0, deep=True) == []


def test_missing_manifest_is_reported(tmp_path: Path) -> None:
    assert "missing" in verify_shard(open_store(tmp_path.as_uri()), 3)[0]


def test_stop_checkpoints_and_a_resume_gives_the_uninterrupted_shard(fake: FakeRenderer, tmp_path: Path) -> None:
    """Stopped after its second sample, the pipelined worker finishes the samples in flight (at most
    ``pipeline.DEPTH`` more), checkpoints every sample it reported and none twice; the resume commits
    the shard an uninterrupted run commits."""
    spec = builders.spec(RENDER, samples=16, shardSize=8)
    reference = open_store((tmp_path / "ref").as_uri())
    ref = run_shard(spec, "ds", 1, store=reference, renderer=fake)
    store = open_store((tmp_path / "run").as_uri())
    stop = threading.Event()
    reported: list[int] = []

    def stop_after_two(event: dict[str, Any]) -> None:
        reported.append(event["index"])
        if len(reported) == 2:
            stop.set()

    out = run_shard(spec, "ds", 1, store=store, stop=stop, progress=stop_after_two, renderer=fake)
    assert out.status == "interrupted" and out.exit_code == EXIT_SIGTERM
    assert out.samples == len(reported) and 2 <= out.samples <= 2 + pipeline.DEPTH
    assert reported == list(range(8, 8 + out.samples))
    assert store.exists(layout.checkpoint_path(1)) and not store.exists(layout.manifest_path(1))
    resumed = run_shard(spec, "ds", 1, store=store, renderer=fake)
    assert resumed.status == "committed" and resumed.resumed == out.samples
    assert resumed.manifest is not None and ref.manifest is not None
    assert resumed.manifest["sha256"] == ref.manifest["sha256"]
    assert not store.exists(layout.checkpoint_path(1))


@pytest.mark.parametrize("damage", ["flip-byte", "drop-meta", "other-spec"])
def test_a_bad_checkpoint_is_discarded(fake: FakeRenderer, tmp_path: Path, damage: str) -> None:
    spec = builders.spec(RENDER)
    store = open_store(tmp_path.as_uri())
    stop = threading.Event()
    run_shard(spec, "ds", 0, store=store, stop=stop, progress=lambda e: stop.set(), renderer=fake)
    ckpt = tmp_path / layout.checkpoint_path(0)
    meta = ckpt.with_suffix(".json")
    assert ckpt.exists() and meta.exists()
    if damage == "flip-byte":
        data = bytearray(ckpt.read_bytes())
        data[700] ^= 0xFF
        ckpt.write_bytes(bytes(data))
    elif damage == "drop-meta":
        meta.unlink()
    else:
        spec = builders.spec(RENDER, render={**RENDER["render"], "samples": {"min": 5, "max": 5}})
    out = run_shard(spec, "ds", 0, store=store, renderer=fake)
    assert out.status == "committed" and out.resumed == 0 and out.samples == 4


def test_a_shard_under_the_pass_rate_fails_without_committing(fake: FakeRenderer, tmp_path: Path) -> None:
    spec = builders.spec(RENDER, quality={**RENDER["quality"], "minScore": 1.0, "minPassRate": 0.9, "maxRerenders": 0})
    store = open_store(tmp_path.as_uri())
    out = run_shard(spec, "ds", 0, store=store, renderer=fake)
    assert out.status == "failed" and out.exit_code not in (0, 2, 143) and "pass rate" in out.reason
    assert not store.exists(layout.manifest_path(0))


# --------------------------------------------------------------------------- the container entry point


def _worker(spec: dict[str, Any], *args: str, env: dict[str, str] | None = None,
            renderer: str = "blender") -> subprocess.Popen[str]:
    """``synth-render`` in a process of its own, rendering with Blender or the fake renderer."""
    full_env = {**os.environ, "SYNTH_SPEC_JSON": json.dumps(spec), **(env or {})}
    entry = [FAKE_WORKER] if renderer == "fake" else ["-m", "synth_render.worker"]
    return subprocess.Popen([sys.executable, *entry, "--dataset", "ds", *args],
                            env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _assert_same_sample(key: str, a: dict[str, bytes], b: dict[str, bytes]) -> None:
    """Same sample: identical scene, camera, settings; pixels equal up to Cycles' run-to-run noise.

    Cycles on the CPU is bit-exact within a process, but across processes a few pixels of
    scenes with several emitters or refractive objects can differ slightly (its BVH and light
    tree builds are not order-stable), so pixels are compared with a small tolerance here.
    """
    import io

    import numpy as np
    from PIL import Image

    assert set(a) == set(b), key
    ma, mb = json.loads(a["json"]), json.loads(b["json"])
    assert [o["id"] for o in ma["objects"]] == [o["id"] for o in mb["objects"]], key
    for m in (ma, mb):
        m.pop("quality"), m.pop("objects"), m.pop("depth", None)
    assert ma == mb, key
    rgb_a, rgb_b = (np.asarray(Image.open(io.BytesIO(x["png"])), dtype=np.float64) for x in (a, b))
    assert np.abs(rgb_a - rgb_b).mean() < 1.0, key
    seg_a, seg_b = (np.asarray(Image.open(io.BytesIO(x["seg.png"]))) for x in (a, b))
    assert (seg_a != seg_b).mean() < 0.02, key


def _logs(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("spec", "args", "env", "message"),
    [
        ({"samples": 0}, (), {}, "spec.samples"),
        ({}, ("--shard-start", "5"), {}, "out of range"),
        ({}, (), {"JOB_COMPLETION_INDEX": "x"}, "JOB_COMPLETION_INDEX"),
        ({"render": {**RENDER["render"], "engine": "eevee"}}, (), {}, "eevee"),
    ],
)
def test_bad_configuration_exits_2_with_a_clear_message(spec: dict[str, Any], args: tuple[str, ...],
                                                        env: dict[str, str], message: str) -> None:
    proc = _worker(wire(RENDER, **spec), *args, env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_BAD_CONFIG
    logs = _logs(err)
    assert logs[-1]["event"] == "bad configuration" and message in logs[-1]["error"]


@pytest.mark.parametrize("renderer", ["fake", pytest.param("blender", marks=pytest.mark.blender)])
@pytest.mark.parametrize("grace", ["5", "0"])
def test_sigterm_mid_shard_checkpoints_and_the_next_attempt_resumes(
        s3_endpoint: str, s3_client: Any, bucket: str, aws_env: None, grace: str, renderer: str) -> None:
    """grace 5: the current sample finishes; grace 0: it is abandoned mid-render. With Blender the
    handler survives Blender's import (which resets SIGTERM) and a signal lands inside a render call."""
    spec = wire(RENDER, samples=16, shardSize=8, output={"uri": f"s3://{bucket}/run", "endpointUrl": s3_endpoint},
                          render={**RENDER["render"], "samples": {"min": 32, "max": 32}})
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "JOB_COMPLETION_INDEX": "1",
           "SYNTH_SIGTERM_GRACE_SECONDS": grace}
    proc = _worker(spec, "--shard-start", "0", env=env, renderer=renderer)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if '"event": "sample"' in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_SIGTERM, rest
    saved = [e for e in _logs("".join(lines) + rest) if e["event"] == "checkpoint saved"]
    assert saved and 1 <= saved[0]["samples"] < 8
    store = S3Store(s3_client, bucket, "run/ds/v1")
    assert store.exists(layout.checkpoint_path(1)) and not store.exists(layout.manifest_path(1))

    resume = _worker(spec, "--shard-start", "0", env=env, renderer=renderer)
    _, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err
    assert any(e["event"] == "checkpoint resumed" for e in _logs(err))
    reference_spec = {**spec, "output": {**spec["output"], "uri": f"s3://{bucket}/ref"}}
    ref = _worker(reference_spec, "--shard", "1", env=env, renderer=renderer)
    assert ref.wait(timeout=300) == 0
    ref_store = S3Store(s3_client, bucket, "ref/ds/v1")
    resumed = list(shards.read_samples(store.read_bytes(layout.shard_path(1)) or b""))
    reference = list(shards.read_samples(ref_store.read_bytes(layout.shard_path(1)) or b""))
    assert [k for k, _ in resumed] == [k for k, _ in reference]
    for (key, a), (_, b) in zip(resumed, reference, strict=True):
        _assert_same_sample(key, a, b)
    keys = [k for k, _ in shards.read_samples(store.read_bytes(layout.shard_path(1)) or b"")]
    assert keys == [planning.sample_key(i) for i in range(8, 16)]
    again = _worker(spec, "--shard-start", "0", env=env, renderer=renderer)
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0 and any(e["event"] == "shard already committed" for e in _logs(err))


@pytest.mark.blender
def test_render_sample_reproduces_a_sample_of_a_committed_shard(tmp_path: Path) -> None:
    spec = wire(RENDER, samples=12, output=tmp_path / "out")
    worker = _worker(spec, "--shard", "2")
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    manifest = write_manifest(tmp_path / "ds.yaml", spec)
    cmd = [sys.executable, "-c", "from parallel_synth.commands.cli import main; main()", "render-sample", str(manifest)]
    done = subprocess.run([*cmd, "--index", "9", "--out", str(tmp_path / "one")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    files = {p.name.split(".", 1)[1]: p.read_bytes() for p in (tmp_path / "one").iterdir()}
    store = open_store((tmp_path / "out" / "ds" / "v1").as_uri())
    committed = dict(_tar_samples(store, 2))["000000000009"]
    assert json.loads(committed["json"])["category"] == "fluids"  # refraction: the hardest case
    _assert_same_sample("000000000009", files, committed)
    bad = subprocess.run([*cmd, "--index", "12", "--out", str(tmp_path / "x")], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "out of range" in bad.stderr
