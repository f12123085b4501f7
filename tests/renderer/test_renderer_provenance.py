"""Every shard manifest records the renderer image it was made with (issue #12 item 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_renderer import FakeRenderer
from renderer_helpers import tiny_spec

from parallel_synth.jobs import JobRequest, Owner, build_job
from parallel_synth.settings import OperatorSettings
from synth_contract import layout
from synth_contract.api import RenderBatchSpec
from synth_contract.store import open_store
from synth_render.worker import run_shard

PINNED = "registry.example.com/ml/renderer@sha256:" + "0f" * 32


def _job_env(image: str) -> dict[str, str]:
    """The plain env the operator puts on a rendering pod for a dataset with ``spec.image: image``."""
    spec = tiny_spec(image=image, output={"uri": "s3://bucket/data"})
    bspec = RenderBatchSpec(dataset="ds", shard_start=0, shard_count=1, parallelism=1)
    req = JobRequest(dataset="ds", namespace="ns", batch="ds-b0", batch_spec=bspec, attempt=1, shard_offset=0,
                     completions=1, parallelism=1)
    job = build_job(req, spec, Owner(kind="RenderBatch", name="ds-b0", uid="u"), settings=OperatorSettings())
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e}


@pytest.mark.parametrize(("image", "digest"), [(PINNED, "sha256:" + "0f" * 32),
                                               ("ghcr.io/parallel-synth/renderer:0.1.0", None)])
def test_shard_manifest_records_the_image_the_job_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      image: str, digest: str | None) -> None:
    for name, value in _job_env(image).items():
        if name.startswith("SYNTH_RENDERER"):
            monkeypatch.setenv(name, value)
    spec = tiny_spec(samples=2, shardSize=2)
    out = run_shard(spec, "ds", 0, store=open_store(tmp_path.as_uri()), renderer=FakeRenderer())
    assert out.status == "committed"
    manifest = json.loads((tmp_path / layout.manifest_path(0)).read_text())
    assert manifest["image"] == image and manifest["imageDigest"] == digest


def test_a_local_run_records_no_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTH_RENDERER_IMAGE", raising=False)
    run_shard(tiny_spec(samples=2, shardSize=2), "ds", 0, store=open_store(tmp_path.as_uri()), renderer=FakeRenderer())
    manifest = json.loads((tmp_path / layout.manifest_path(0)).read_text())
    assert manifest["image"] is None and manifest["imageDigest"] is None
