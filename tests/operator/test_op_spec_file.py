"""Render pods read the dataset spec from the mounted ConfigMap (issue #22 item 8).

The operator no longer copies the spec into every pod's env; the renderer reads
``$SYNTH_SPEC_FILE`` (what the Job mounts) and still accepts ``$SYNTH_SPEC_JSON`` (Jobs made by
an older operator, local runs). Checked on the renderer's own spec loader, with the ConfigMap
the operator builds written where the Job mounts it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from builders import batch_spec, render_job, spec

from parallel_synth.decisions.jobs import SPEC_KEY, JobRequest, Owner, build_spec_configmap
from synth_render import worker
from synth_render.shard_run import BadConfig

NO_FLAG = argparse.Namespace(spec_file=None)


def mounted(tmp_path: Path) -> Path:
    """The attempt's ConfigMap projected as the kubelet does (its key as a file in the mount)."""
    req = JobRequest(dataset="ds", namespace="ns", batch="ds-b0", batch_spec=batch_spec(), attempt=1,
                     shard_offset=0, completions=10, parallelism=1)
    cm = build_spec_configmap(req, spec(samples=1234), Owner("RenderBatch", "ds-b0", "u"))
    path = tmp_path / SPEC_KEY
    path.write_text(cm["data"][SPEC_KEY])
    return path


def test_the_renderer_reads_the_mounted_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = mounted(tmp_path)
    env = {e["name"]: e.get("value") for e in render_job(spec())["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "SYNTH_SPEC_JSON" not in env
    monkeypatch.delenv("SYNTH_SPEC_JSON", raising=False)
    monkeypatch.setenv("SYNTH_SPEC_FILE", str(path))
    assert worker._load_spec(NO_FLAG).samples == 1234


def test_the_env_of_older_jobs_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTH_SPEC_FILE", raising=False)
    monkeypatch.setenv("SYNTH_SPEC_JSON", json.dumps(spec(samples=77).wire()))
    assert worker._load_spec(NO_FLAG).samples == 77


def test_an_unreadable_spec_file_is_bad_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_SPEC_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(BadConfig, match=r"missing\.json"):
        worker._load_spec(NO_FLAG)
