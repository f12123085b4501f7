"""The dataset's batch window when RenderBatches vanish or belong to someone else (issue #22 item 1).

A RenderBatch deleted before it finished (``kubectl delete rb``, or the garbage collector removing
the batches of a dataset deleted and re-created under the same name) must not take its shards
with it: its index is opened again once its name is free, and the dataset is finished only when
every batch index is folded. Batches are adopted by owner uid only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from builders import batch_body, spec

from parallel_synth.cluster.observe import observed_batch
from parallel_synth.decisions.dataset import DatasetDecision, decide_dataset, window_size
from parallel_synth.decisions.facts import JobFacts
from parallel_synth.settings import OperatorSettings, Settings
from synth_contract import planning
from synth_contract.api import RenderBatchSpec, SynthDatasetStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
UID = "d0000000-0000-4000-8000-000000000001"
OLD_UID = "d0000000-0000-4000-8000-0000000000ff"
# 4 shards of 100, one shard per batch, 2 live at once: the reproduction of the issue
SPEC = spec(samples=400, shardSize=100, workers={"max": 2}, shardsPerBatch=1)


def bspec(index: int) -> RenderBatchSpec:
    """The spec of batch ``index`` (one shard) as the dataset decision creates it."""
    return RenderBatchSpec(dataset="ds", shard_start=index, shard_count=1, parallelism=1)


def owned(body: dict[str, Any], uid: str = UID, *, deleting: bool = False) -> dict[str, Any]:
    body["metadata"]["ownerReferences"] = [{"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
                                            "name": "ds", "uid": uid, "controller": True}]
    if deleting:
        body["metadata"]["deletionTimestamp"] = "2026-01-01T00:59:00Z"
    return body


def decide(status: SynthDatasetStatus | None, batches: list[dict[str, Any]], *,
           index_job: JobFacts | None = None) -> DatasetDecision:
    return decide_dataset(name="ds", spec=SPEC, status=status or SynthDatasetStatus(),
                          batches=[observed_batch(b) for b in batches], index_job=index_job, generation=1,
                          now=NOW, settings=Settings(), uid=UID)


def body_of(d: DatasetDecision, index: int, **status: Any) -> dict[str, Any]:
    c = next(c for c in d.create if c.index == index)
    return owned(batch_body(c.name, c.spec, index=index, status=status))


def done(d: DatasetDecision, index: int) -> dict[str, Any]:
    return body_of(d, index, phase="Succeeded", completedShards="0", shardsDone=1)


def test_a_batch_deleted_before_it_finished_is_opened_again_and_the_dataset_waits_for_it() -> None:
    d = decide(None, [])
    window = [c.index for c in d.create]
    assert window == [0, 1]
    bodies = {i: body_of(d, i) for i in window}
    # batch 1 is deleted while rendering; batch 0 finishes: 0 is folded, 2 and 3 open, 1 waits for its name
    d = decide(d.status, [done(d, 0), owned(bodies[1], deleting=True)])
    assert [c.index for c in d.create] == [2, 3]
    bodies.update({i: body_of(d, i) for i in (2, 3)})
    # batch 1 is gone; 2 finishes: the lost batch is opened again before anything else
    d = decide(d.status, [done(d, 2), bodies[3]])
    assert [c.index for c in d.create] == [1]
    bodies[1] = body_of(d, 1)
    # 0, 2, 3 committed, 1 still rendering: not "every shard committed"
    d = decide(d.status, [bodies[1], owned(batch_body(bodies[3]["metadata"]["name"], bspec(3), index=3,
                                                      status={"phase": "Succeeded", "completedShards": "0"}))])
    assert d.status.phase == "Running" and not d.create_index_job and d.create == []
    assert d.status.shards.completed == 3 and d.status.progress == "75.0%"
    # batch 1 finishes: every shard is committed and the index Job starts
    b1 = owned(batch_body(bodies[1]["metadata"]["name"], bspec(1), index=1,
                          status={"phase": "Succeeded", "completedShards": "0"}))
    end = decide(d.status, [b1])
    assert end.status.shards.completed == 4 and end.create_index_job
    assert end.status.samples.completed == 400


def test_batches_of_a_predecessor_with_the_same_name_are_not_adopted() -> None:
    # the old dataset's batch 0 (finished) is still being collected; the new dataset starts
    old0 = owned(batch_body("ds-b0", bspec(0), index=0,
                            status={"phase": "Succeeded", "completedShards": "0", "shardsDone": 1}), OLD_UID)
    d = decide(None, [old0])
    assert d.status.samples.completed == 0 and d.delete == []  # not folded, not deleted by us
    assert [c.index for c in d.create] == [1, 2]  # its name is taken: the others first
    # once the old batch is gone, index 0 is opened for the new dataset
    created = [owned(batch_body(c.name, c.spec, index=c.index)) for c in d.create]
    again = decide(d.status, created)
    assert [c.index for c in again.create] == []  # the window is full
    b2_done = owned(batch_body(created[1]["metadata"]["name"], d.create[1].spec, index=2,
                               status={"phase": "Succeeded", "completedShards": "0"}))
    freed = decide(again.status, [created[0], b2_done])  # old batch 0 gone, new batch 2 done
    assert [c.index for c in freed.create] == [0]


def test_an_index_job_of_a_predecessor_is_not_taken_for_ours() -> None:
    st = None
    bodies: list[dict[str, Any]] = []
    for _ in range(6):  # render everything, one batch at a time
        d = decide(st, bodies)
        st = d.status
        bodies = [owned(batch_body(c.name, c.spec, index=c.index, status={"phase": "Succeeded",
                                                                             "completedShards": "0"}))
                  for c in d.create]
    assert st is not None and st.shards.completed == 4
    foreign = JobFacts(name="ds-index", finished="Complete", owner_uid=OLD_UID)
    d = decide(st, [], index_job=foreign)
    assert d.status.index is not None and d.status.index.phase == "Running"  # not Succeeded from the old one
    assert not d.create_index_job  # its name is taken until it goes
    mine = decide(st, [], index_job=JobFacts(name="ds-index", finished="Complete", owner_uid=UID))
    assert mine.status.phase == "Succeeded"




@pytest.mark.parametrize(("workers", "samples", "shard"), [
    (1000, 2_000_000, 200),  # benchmarks/bench_fleet.py: 10,000 shards, 3 per batch before, 96 pods at most
    (100, 30_000, 20),  # the --quick form
    (50, 10_000, 100),  # fewer shards than 4 x workers.max: 1 shard per batch, 32 live batches
    (33, 1_000_000, 100),
    (4, 400, 100),
])
def test_the_default_batches_let_the_window_hold_every_worker(workers: int, samples: int, shard: int) -> None:
    """``window_size x shards_per_batch >= workers.max`` under the default settings, so the 32-batch
    window never caps the fleet below ``workers.max`` (issue #26: 96 of 1,000 pods on kwok)."""
    s = spec(samples=samples, shardSize=shard, workers={"min": 0, "max": workers})
    per = planning.shards_per_batch(s)
    total = planning.shard_count(s)
    assert window_size(s, OperatorSettings(), per) * per >= min(workers, total)
    assert per <= 1000


# issue #26: 100 kwok nodes ran in waves at 28% of the target: with shardsPerBatch = workers.max the
# window is 2, both batches drain together and the fleet idles until the slowest pod of each commits
WAVES = spec(samples=40_000, shardSize=10, workers={"min": 0, "max": 100}, shardsPerBatch=100)


def _decide_waves(status: SynthDatasetStatus, batches: list[dict[str, Any]], *, queue: str | None = None
                  ) -> DatasetDecision:
    s = WAVES if queue is None else spec(samples=40_000, shardSize=10, workers={"min": 0, "max": 100},
                                         shardsPerBatch=100, queue=queue)
    return decide_dataset(name="ds", spec=s, status=status, batches=[observed_batch(b) for b in batches],
                          index_job=None, generation=1, now=NOW, settings=Settings(), uid=UID)


@pytest.mark.parametrize("queue", [None, "gpu"])
def test_a_batch_whose_every_remaining_shard_has_a_pod_does_not_hold_the_window(queue: str | None) -> None:
    first = _decide_waves(SynthDatasetStatus(), [], queue=queue)
    assert [c.index for c in first.create] == [0, 1]  # ceil(100 / 100) + 1
    # batch 0: 95 of 100 committed, its last 5 shards each have a running pod (the long tail);
    # batch 1: 40 committed, 60 to go, 50 of them rendering
    tail = body_of(first, 0, phase="Running", completedShards="0-94", shardsDone=95, active=5)
    busy = body_of(first, 1, phase="Running", completedShards="0-39", shardsDone=40, active=50)
    d = _decide_waves(first.status, [tail, busy], queue=queue)
    if queue is None:
        assert [c.index for c in d.create] == [2]  # the idle workers get batch 2's shards now
        assert d.status.wire()["plan"]["liveBatches"] == 3
    else:  # under Kueue the draining Job holds its quota until it ends: nothing gained by opening more
        assert d.create == []
    # a batch with shards no pod has taken still holds its place
    short = body_of(first, 0, phase="Running", completedShards="0-89", shardsDone=90, active=5)
    assert _decide_waves(first.status, [short, busy], queue=queue).create == []


def test_draining_batches_stay_bounded_by_the_live_batch_cap() -> None:
    status = _decide_waves(SynthDatasetStatus(), []).status
    ops = OperatorSettings()
    batches = []
    for i in range(ops.max_live_batches):  # every live batch is draining: one pod on its last shard
        c = RenderBatchSpec(dataset="ds", shard_start=i * 100, shard_count=100, parallelism=1)
        batches.append(owned(batch_body(f"ds-b{i}", c, index=i, status={
            "phase": "Running", "completedShards": "0-98", "shardsDone": 99, "active": 1})))
    status = status.model_copy(update={"next_shard": ops.max_live_batches * 100})
    assert _decide_waves(status, batches).create == []
    assert _decide_waves(status, batches[:-1]).create != []
