"""Every shard manifest records the renderer image it was made with (issue #12 item 13)."""

from __future__ import annotations

import json
from pathlib import Path

import builders
import pytest
from builders import RENDER
from fake_renderer import FakeRenderer

from synth_contract import layout
from synth_contract.store import open_store
from synth_render.worker import run_shard

PINNED = "registry.example.com/ml/renderer@sha256:" + "0f" * 32


def _job_env(image: str) -> dict[str, str]:
    """The plain env the operator puts on a rendering pod for a dataset with ``spec.image: image``."""
    spec = builders.spec(RENDER, image=image, output={"uri": "s3://bucket/data"})
    job = builders.render_job(spec, bspec=builders.batch_spec(shard_count=1, parallelism=1), parallelism=1)
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e}


@pytest.mark.parametrize(("image", "digest"), [(PINNED, "sha256:" + "0f" * 32),
                                               ("ghcr.io/parallel-synth/renderer:0.1.0", None)])
def test_shard_manifest_records_the_image_the_job_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      image: str, digest: str | None) -> None:
    for name, value in _job_env(image).items():
        if name.startswith("SYNTH_RENDERER"):
            monkeypatch.setenv(name, value)
    spec = builders.spec(RENDER, samples=2, shardSize=2)
    out = run_shard(spec, "ds", 0, store=open_store(tmp_path.as_uri()), renderer=FakeRenderer())
    assert out.status == "committed"
    manifest = json.loads((tmp_path / layout.manifest_path(0)).read_text())
    assert manifest["image"] == image and manifest["imageDigest"] == digest


def test_a_local_run_records_no_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTH_RENDERER_IMAGE", raising=False)
    run_shard(builders.spec(RENDER, samples=2, shardSize=2), "ds", 0, store=open_store(tmp_path.as_uri()), renderer=FakeRenderer())
    manifest = json.loads((tmp_path / layout.manifest_path(0)).read_text())
    assert manifest["image"] is None and manifest["imageDigest"] is None
