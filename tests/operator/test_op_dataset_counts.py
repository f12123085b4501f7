"""What the dataset status counts once batches are folded (issue #22 item 10, issue #23 item 3).

* Per-segment progress (``status.schedule``) of folded batches is counted when each batch is
  folded: the failed-shards text is bounded (``...(+N more)``), and deriving committed shards from
  it counted the dropped failures as committed.
* ``samples.completed`` and the category counts are what was committed *and kept*; samples the
  quality gate quarantined (reported in the committing pod's termination message) are counted
  apart in ``samples.quarantined``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from builders import batch_body, pod, spec

from parallel_synth.cluster.observe import job_facts, observed_batch, pod_facts, quarantine_report
from parallel_synth.decisions.batch import decide_batch
from parallel_synth.decisions.curation import segment_progress
from parallel_synth.decisions.dataset import DatasetDecision, decide_dataset
from parallel_synth.settings import OperatorSettings, Settings
from synth_contract import ranges
from synth_contract.api import RenderBatchStatus, SynthDatasetStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
SCHEDULED = spec(samples=2000, shardSize=100, workers={"max": 2}, shardsPerBatch=1,
                 categories=[{"name": "geometry"}, {"name": "lighting"}],
                 schedule=[{"fromShard": 10, "categories": [{"name": "lighting", "weight": 3},
                                                              {"name": "geometry", "weight": 1}]}])


def run_to_the_end(settings: Settings, finish: Any) -> tuple[DatasetDecision, list[tuple[int, int]]]:
    """Tick the dataset until every batch is folded; ``finish(index)`` gives each batch's final status."""
    st: SynthDatasetStatus | None = None
    live: list[dict[str, Any]] = []
    committed: list[tuple[int, int]] = []
    d = None
    for _ in range(40):
        d = decide_dataset(name="ds", spec=SCHEDULED, status=st or SynthDatasetStatus(),
                           batches=[observed_batch(b) for b in live], index_job=None, generation=1, now=NOW,
                           settings=settings)
        st = d.status
        live = []
        for c in d.create:  # each new batch finishes by the next tick
            final = finish(c.index)
            if final.get("completedShards"):
                committed.append((c.index, c.index))
            live.append(batch_body(c.name, c.spec, index=c.index, status=final))
        if not live and d.create == [] and st.plan.live_batches == 0:
            break
    assert d is not None
    return d, committed


def test_schedule_progress_stays_exact_when_the_failed_shards_text_is_cut() -> None:
    settings = Settings(operator=OperatorSettings(max_status_ranges=2))
    every_other = lambda i: ({"phase": "Failed", "failedShards": "0"} if i % 2 == 0  # noqa: E731
                             else {"phase": "Succeeded", "completedShards": "0"})
    d, committed = run_to_the_end(settings, every_other)
    assert "more" in (d.status.failed_shards or "")  # the text is summarised...
    expected = segment_progress(SCHEDULED, ranges.normalise(committed))
    got = [{**s.wire(), "categories": {c: {k: v[k] for k in ("target", "completed")}
                                       for c, v in s.wire()["categories"].items()}} for s in d.status.schedule]
    assert got == expected  # ...but the per-segment counts are those of the shards really committed
    assert sum(c["completed"] for seg in got for c in seg["categories"].values()) == 1000


def committing_pod(name: str, *, quarantined: dict[str, int] | None) -> dict[str, Any]:
    p = pod(name, batch="ds-b0", job="ds-b0-a1", phase="Succeeded", started="2026-01-01T00:00:00Z",
            finished="2026-01-01T00:10:00Z", exit_code=0)
    if quarantined is not None:
        p["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = json.dumps(
            {"outcome": "committed", "shard": 0, "samples": 100 - sum(quarantined.values()),
             "quarantined": {"samples": sum(quarantined.values()), "categories": quarantined}})
    return p


def test_quarantined_samples_are_counted_apart_from_the_kept_ones() -> None:
    s = spec(samples=200, shardSize=100, workers={"max": 1}, shardsPerBatch=2, categories=[{"name": "geometry"}])
    from builders import batch_spec, job_status, render_job

    bspec = batch_spec(shard_count=2, parallelism=1)
    job = job_status(render_job(s, bspec=bspec, completions=2), completed="0-1", finished="Complete")
    pods = [committing_pod("p0", quarantined={"geometry": 7}), committing_pod("p1", quarantined=None)]

    def tick(st: RenderBatchStatus) -> Any:
        return decide_batch(dataset="ds", namespace="ns", name="ds-b0", spec=bspec, status=st, dataset_spec=s,
                            job=job_facts(job), pods=[pod_facts(p) for p in pods], generation=1, now=NOW,
                            settings=Settings())

    b = tick(RenderBatchStatus(attempt=1, job="ds-b0-a1", phase="Running"))
    assert b.status.samples_quarantined == 7 and b.status.samples_completed == 193
    assert b.status.quarantined_categories == {"geometry": 7}
    assert tick(b.status).status.samples_quarantined == 7  # each pod's report counted once
    d = decide_dataset(name="ds", spec=s, status=SynthDatasetStatus(),
                       batches=[observed_batch(batch_body("ds-b0", bspec, index=0, status=b.status.wire()))],
                       index_job=None, generation=1, now=NOW, settings=Settings())
    samples = d.status.wire()["samples"]
    assert (samples["completed"], samples["quarantined"]) == (193, 7)
    assert d.status.wire()["categories"]["geometry"] == {"target": 200, "completed": 193, "quarantined": 7}
    assert d.status.folded.quarantined_samples == 7 and d.status.wire()["shards"]["completed"] == 2


def test_a_termination_message_that_is_not_a_commit_report_counts_as_all_kept() -> None:
    assert quarantine_report("Error: out of memory") == (0, ())
    assert quarantine_report(json.dumps({"outcome": "skipped", "quarantined": {"samples": 5}})) == (0, ())
    assert quarantine_report(json.dumps({"outcome": "committed", "quarantined": {"samples": True}})) == (0, ())
    assert quarantine_report(json.dumps({"outcome": "committed", "quarantined": {
        "categories": {"a": 2, "b": -1, "c": "x"}}})) == (2, (("a", 2),))
