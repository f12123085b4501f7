"""The fleet's render busy ratio (issue #25 item 3): from each committing pod to ``kubectl get sds``.

The worker writes its shard's main-thread timings into the pod's termination message
(``synth_render.worker.termination_message``); the operator sums them per batch once per pod and
shows render-call seconds over main-thread seconds as ``status.renderBusyRatio`` (printer column
``Busy``), kept when finished batches are folded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from builders import batch_body, batch_spec, job_status, pod, render_job, spec

from parallel_synth.cluster.observe import busy_report, job_facts, observed_batch, pod_facts
from parallel_synth.commands.crds import synthdataset_crd
from parallel_synth.decisions.batch import decide_batch
from parallel_synth.decisions.dataset import decide_dataset
from parallel_synth.settings import Settings
from synth_contract.api import RenderBatchStatus, SynthDatasetStatus
from synth_render.shard_run import ShardOutcome
from synth_render.worker import TERMINATION_LIMIT, termination_message, write_termination_message

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)


def outcome(render: float, other: float, wait: float, **quarantined: int) -> ShardOutcome:
    doc = {"samples": 100 - sum(quarantined.values()),
           "quarantined": {"samples": sum(quarantined.values()), "categories": quarantined, "keys": ["x"] * 3},
           "timings": {"renderSeconds": render, "renderCallSeconds": render, "mainThreadOtherSeconds": other,
                       "pipelineWaitSeconds": wait, "renderBusyRatio": render / (render + other + wait)}}
    return ShardOutcome("committed", 4, samples=doc["samples"], manifest=doc)  # type: ignore[arg-type]


def committing_pod(name: str, message: str) -> dict[str, Any]:
    p = pod(name, batch="ds-b0", job="ds-b0-a1", phase="Succeeded", started="2026-01-01T00:00:00Z",
            finished="2026-01-01T00:10:00Z", exit_code=0)
    p["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = message
    return p


def test_the_busy_ratio_goes_from_the_workers_to_the_dataset_status() -> None:
    s = spec(samples=200, shardSize=100, workers={"max": 1}, shardsPerBatch=2, categories=[{"name": "geometry"}])
    bspec = batch_spec(shard_count=2, parallelism=1)
    job = job_status(render_job(s, bspec=bspec, completions=2), completed="0-1", finished="Complete")
    pods = [committing_pod("p0", termination_message(outcome(90.0, 8.0, 2.0, geometry=3))),
            committing_pod("p1", termination_message(outcome(50.0, 40.0, 10.0)))]

    def tick(st: RenderBatchStatus) -> Any:
        return decide_batch(dataset="ds", namespace="ns", name="ds-b0", spec=bspec, status=st, dataset_spec=s,
                            job=job_facts(job), pods=[pod_facts(p) for p in pods], generation=1, now=NOW,
                            settings=Settings())

    b = tick(RenderBatchStatus(attempt=1, job="ds-b0-a1", phase="Running"))
    assert (b.status.render_call_seconds, b.status.main_thread_seconds) == (140.0, 200.0)
    assert b.status.samples_quarantined == 3  # the same message still carries the quarantine
    again = tick(b.status).status
    assert (again.render_call_seconds, again.main_thread_seconds) == (140.0, 200.0)  # each pod once
    d = decide_dataset(name="ds", spec=s, status=SynthDatasetStatus(),
                       batches=[observed_batch(batch_body("ds-b0", bspec, index=0, status=b.status.wire()))],
                       index_job=None, generation=1, now=NOW, settings=Settings())
    assert d.status.wire()["renderBusyRatio"] == 0.7
    # The batch is folded (it finished): the ratio stays.
    d2 = decide_dataset(name="ds", spec=s, status=d.status, batches=[], index_job=None, generation=1, now=NOW,
                        settings=Settings())
    assert d2.status.folded.main_thread_seconds == 200.0 and d2.status.render_busy_ratio == 0.7


def test_no_report_no_ratio() -> None:
    s = spec(samples=100, shardSize=100, workers={"max": 1})
    d = decide_dataset(name="ds", spec=s, status=SynthDatasetStatus(), batches=[], index_job=None, generation=1,
                       now=NOW, settings=Settings())
    assert d.status.render_busy_ratio is None and "renderBusyRatio" not in d.status.wire()


@pytest.mark.parametrize("message", [
    "", "Error: out of memory", '{"outcome": "skipped", "timings": {"renderCallSeconds": 1, "mainThreadSeconds": 2}}',
    '{"outcome": "committed", "timings": {"renderCallSeconds": 3, "mainThreadSeconds": 2}}',
    '{"outcome": "committed", "timings": {"renderCallSeconds": true, "mainThreadSeconds": 2}}',
    '{"outcome": "committed", "timings": {"renderCallSeconds": -1, "mainThreadSeconds": 2}}',
    '{"outcome": "committed", "timings": [1, 2]}',
])
def test_a_message_without_sound_timings_adds_nothing(message: str) -> None:
    assert busy_report(message) == (0.0, 0.0)


def test_the_message_fits_the_kubelets_limit_and_is_written_where_asked(tmp_path: Any) -> None:
    many = outcome(1.0, 1.0, 0.0, **{f"class_{i:04d}": 1 for i in range(600)})
    text = termination_message(many)
    assert len(text.encode()) <= TERMINATION_LIMIT and busy_report(text) == (1.0, 2.0)
    assert termination_message(ShardOutcome("skipped", 1)) == ""
    path = tmp_path / "termination-log"
    write_termination_message(outcome(9.0, 1.0, 0.0), {"SYNTH_TERMINATION_LOG": str(path)})
    assert busy_report(path.read_text()) == (9.0, 10.0)
    write_termination_message(outcome(9.0, 1.0, 0.0), {"SYNTH_TERMINATION_LOG": str(tmp_path / "no" / "file")})


def test_kubectl_get_sds_shows_the_busy_ratio() -> None:
    cols = synthdataset_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    busy = next(c for c in cols if c["name"] == "Busy")
    assert busy["jsonPath"] == ".status.renderBusyRatio" and "priority" not in busy


def test_prometheus_shows_the_measured_ratio() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from parallel_synth.cluster.metrics import Metrics

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.update_from_status("ns", "a", {"samples": 10}, {"renderBusyRatio": 0.812}, now=NOW)
    metrics.update_from_status("ns", "b", {"samples": 10}, {"phase": "Pending"}, now=NOW)
    text = generate_latest(registry).decode()
    assert 'parallelsynth_render_busy_ratio{dataset="a",namespace="ns"} 0.812' in text
    assert 'parallelsynth_render_busy_ratio{dataset="b"' not in text  # nothing measured: no series
