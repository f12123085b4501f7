"""Decision: the sliding window of RenderBatches of a dataset, its status, and its finish.

Pure: the dataset's spec and typed status, its RenderBatches (typed), its index Job (typed,
observed first when :func:`needs_index_job` says it matters) and ``now`` in; the new
:class:`SynthDatasetStatus` and the ordered effects (create the index Job, create/scale
batches, patch status, delete folded batches, post Events) out.

Window: at most ``window_size`` unfinished batches live at once, whatever the dataset's size,
not counting batches that are draining (``is_draining``: every remaining shard has a pod), with
the live objects capped by ``workers.max`` and ``settings.max_live_batches``; this is the only
rule that opens batches. A finished batch is folded into ``status.folded``
(its index recorded in ``folded.batches``) in one status write, and deleted afterwards: a
restart between the two sees the index already folded and only deletes, so nothing is counted
twice.

Finish: a dataset whose shards are all committed is not done until its index
(metadata.parquet, metadata.jsonl) and ``dataset.json`` are in the bucket, written by one small
index Job (``jobs.build_index_job``). Until that Job completes the dataset stays ``Running``
(``Degraded`` if it failed) and the ``Finished`` event waits: decided here, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from parallel_synth.decisions.autoscale import (
    Totals,
    autoscale,
    autoscaler_status,
    batch_view,
    cost_status,
    eta_text,
    settled_gpu_seconds,
    transition_events,
)
from parallel_synth.decisions.curation import add_segments, done_shards, schedule_status, segment_counts
from parallel_synth.decisions.effects import (
    CreateBatch,
    CreateIndexJob,
    DeleteBatch,
    Effect,
    Event,
    PatchStatus,
    PostEvent,
    ScaleBatch,
    events_of,
    ordered,
    status_patch,
)
from parallel_synth.decisions.facts import JobFacts, ObservedBatch, condition, owned_by
from parallel_synth.decisions.jobs import index_job_name, short_name
from parallel_synth.decisions.scaling import BatchView
from parallel_synth.decisions.status import (
    add_counts,
    categories_in,
    condition_status,
    is_finished,
    percent,
    samples_in,
    set_condition,
)
from parallel_synth.settings import OperatorSettings, Settings
from synth_contract import planning, ranges
from synth_contract.api import (
    CategoryProgress,
    Condition,
    Counts,
    DatasetPhase,
    FoldedStatus,
    IndexStatus,
    PlanStatus,
    RenderBatchSpec,
    SegmentStatus,
    ShardCounts,
    SynthDatasetSpec,
    SynthDatasetStatus,
    WorkerCounts,
)


@dataclass(frozen=True)
class DatasetDecision:
    """What to do for one dataset now: its new status and the effects, in order."""

    status: SynthDatasetStatus
    effects: tuple[Effect, ...] = ()

    @property
    def create(self) -> list[CreateBatch]:
        return [e for e in self.effects if isinstance(e, CreateBatch)]

    @property
    def set_parallelism(self) -> dict[str, int]:
        return {e.name: e.parallelism for e in self.effects if isinstance(e, ScaleBatch)}

    @property
    def delete(self) -> list[str]:
        return [e.name for e in self.effects if isinstance(e, DeleteBatch)]

    @property
    def create_index_job(self) -> bool:
        return any(isinstance(e, CreateIndexJob) for e in self.effects)

    @property
    def events(self) -> list[Event]:
        return events_of(self.effects)


def batch_name(dataset: str, index: int) -> str:
    """Deterministic RenderBatch name: ``{dataset}-b{index}`` (63 characters at most)."""
    return short_name(dataset, f"-b{index}")


def window_size(spec: SynthDatasetSpec, settings: OperatorSettings, per: int) -> int:
    """Live RenderBatches allowed at once: bounded by the workers' maximum, never by the size.

    Enough batches to give every worker a shard (``ceil(workers.max / per)``) plus one, so the
    pods of a batch draining its last shards move on at once; never more than ``workers.max``
    or ``settings.max_live_batches``. Fewer, fuller batches mean fewer objects to poll.
    """
    enough = -(-spec.workers.max // max(per, 1)) + 1
    return max(1, min(spec.workers.max, settings.max_live_batches, enough))


def is_draining(b: ObservedBatch) -> bool:
    """A live batch draining its last shards: every shard not yet committed (nor failed for good) has
    a pod running or starting, so no new worker can join it (issue #26).

    Such a batch does not hold a place in the window (``window_size``): the next batch opens while
    the long tail of its pods finishes, instead of the fleet idling until the slowest pod commits
    (on 100 kwok nodes with 2 batches of 100 shards, the fleet ran in waves at 28% of the target).
    The number of live objects stays bounded by ``workers.max`` and ``settings.max_live_batches``.
    Not applied under Kueue (``spec.queue``): an admitted Job keeps its quota until it ends, so the
    next batch, already open and waiting, is what takes the quota then.
    """
    if is_finished(b.status.phase) or b.deleting:
        return False
    view = batch_view(b.name, b.spec, b.status)
    return view.running + view.pending >= view.remaining


def needs_index_job(spec: SynthDatasetSpec, status: SynthDatasetStatus, batches: Sequence[ObservedBatch]) -> bool:
    """Whether the index Job can matter to this tick's decision (so observe fetches it first).

    Only when every batch is opened (``nextShard`` at the end) and none of the listed batches
    is still rendering: otherwise the dataset cannot be finished this tick.
    """
    if status.index is not None and status.index.phase == "Succeeded":
        return False
    opened = status.next_shard >= planning.shard_count(spec)
    return opened and all(is_finished(b.status.phase) or b.deleting for b in batches)


def decide_invalid(status: SynthDatasetStatus, errors: list[str], *, generation: int, now: datetime
                   ) -> DatasetDecision:
    """A dataset whose spec is invalid: SpecValid=False with the fields and reasons; ``SpecInvalid``
    is posted once per new verdict."""
    message = "; ".join(errors)
    conds = set_condition(status.conditions, "SpecValid", False, "InvalidSpec", message, now=now)
    conds = set_condition(conds, "Ready", False, "InvalidSpec", message, now=now)
    new = status.model_copy(update={"conditions": conds, "phase": DatasetPhase.FAILED.value,
                                    "observed_generation": generation})
    effects: list[Effect] = []
    patch = status_patch(status, new)
    if patch is not None:
        effects.append(PatchStatus(patch))
    if _verdict(status.conditions) != _verdict(conds):
        effects.append(PostEvent(Event("Warning", "SpecInvalid", message)))
    return DatasetDecision(status=new, effects=tuple(effects))


def _verdict(conditions: Sequence[Condition]) -> tuple[str, str] | None:
    c = condition(conditions, "SpecValid")
    return (c.status, c.message) if c is not None else None


def busy_ratio(folded: FoldedStatus, live: Sequence[ObservedBatch]) -> float | None:
    """Render-call seconds over main-thread seconds of every committed shard's worker (issue #25);
    None while no pod has reported them (older renderers, nothing committed yet)."""
    main = folded.main_thread_seconds + sum(b.status.main_thread_seconds for b in live)
    if main <= 0:
        return None
    render = folded.render_call_seconds + sum(b.status.render_call_seconds for b in live)
    return round(min(1.0, render / main), 4)


def _fold(folded: FoldedStatus, b: ObservedBatch, spec: SynthDatasetSpec) -> FoldedStatus:
    s = b.status
    done = ranges.shift(ranges.parse(s.completed_shards), b.spec.shard_start)
    failed = ranges.subtract(ranges.shift(ranges.parse(s.failed_shards), b.spec.shard_start), done)
    segments = folded.segments
    if spec.schedule:  # per segment, now: the batch's exact spans are gone once it is deleted
        segments = add_segments(segments or {}, segment_counts(spec, done))
    return folded.model_copy(update={
        "quarantined_samples": folded.quarantined_samples + s.samples_quarantined,
        "quarantined_categories": add_counts(dict(folded.quarantined_categories), dict(s.quarantined_categories)),
        "render_call_seconds": round(folded.render_call_seconds + s.render_call_seconds, 3),
        "main_thread_seconds": round(folded.main_thread_seconds + s.main_thread_seconds, 3),
        "segments": segments,
        "samples": folded.samples + samples_in(spec, done),
        "shards": folded.shards + ranges.count(done),
        "failed_shards": folded.failed_shards + ranges.count(failed),
        "failed_samples": folded.failed_samples + samples_in(spec, failed),
        "preemptions": folded.preemptions + s.preemptions,
        "retries": folded.retries + s.retries,
        "gpu_seconds": round(folded.gpu_seconds + s.gpu_seconds, 3),
        "spot_gpu_seconds": round(folded.spot_gpu_seconds + s.spot_gpu_seconds, 3),
        "categories": add_counts(dict(folded.categories), categories_in(spec, done)),
    })


def decide_dataset(
    *,
    name: str,
    spec: SynthDatasetSpec,
    status: SynthDatasetStatus,
    batches: Sequence[ObservedBatch],
    index_job: JobFacts | None,
    generation: int,
    now: datetime,
    settings: Settings,
    uid: str | None = None,
) -> DatasetDecision:
    """Fold finished batches, open new ones up to the window, scale, aggregate, finish.

    ``index_job`` is the dataset's index Job as observed (None: absent, or not fetched because
    :func:`needs_index_job` said it cannot matter). ``uid``: the dataset's own uid; batches (and
    an index Job) owned by another object are not adopted (issue #22 item 1).

    A batch index below ``nextShard`` that is neither live nor folded (its RenderBatch was
    deleted before it finished, by a user or a garbage collector) is opened again, first, once
    its name is free: the dataset is done only when every batch index is folded.
    """
    old = status
    ops = settings.operator
    total_shards = planning.shard_count(spec)
    per = old.plan.shards_per_batch or planning.shards_per_batch(spec)
    total_batches = -(-total_shards // per)
    folded = old.folded
    folded_idx = ranges.parse(folded.batches)
    failed_global = ranges.parse_bounded(old.failed_shards)
    if spec.schedule and folded.segments is None:  # a status from before folded.segments: derive it once
        folded = folded.model_copy(update={"segments": segment_counts(
            spec, done_shards(folded_idx, per, total_shards, failed_global, []))})

    # Fold finished batches; the others are live.
    delete: list[str] = []
    live: list[ObservedBatch] = []
    indexes: dict[str, int] = {}
    taken: set[str] = {b.name for b in batches}  # names in use (ours or not): not created again yet
    own = [b for b in batches if owned_by(b.owner_uid, uid)]
    if index_job is not None and not owned_by(index_job.owner_uid, uid):
        index_job = JobFacts(name=index_job.name, finished=None)  # a predecessor's: wait until it goes
    for b in own:
        index = b.index if b.index is not None else b.spec.shard_start // max(per, 1)
        indexes[b.name] = index
        if ranges.contains(folded_idx, index):
            if not b.deleting:
                delete.append(b.name)  # folded earlier; only the delete was missing
        elif b.deleting and not is_finished(b.status.phase):
            continue  # deleted before it finished: its index is opened again once the name is free
        elif is_finished(b.status.phase):
            folded = _fold(folded, b, spec)
            folded_idx = ranges.union(folded_idx, [(index, index)])
            failed_global = ranges.union(
                failed_global, ranges.shift(ranges.parse(b.status.failed_shards), b.spec.shard_start))
            delete.append(b.name)
        else:
            live.append(b)
    folded = folded.model_copy(update={"batches": ranges.format_spans(folded_idx)})

    # Open new batches up to the window (the one opening rule).
    suspended = spec.suspend
    window = window_size(spec, ops, per)
    seen = [*indexes.values(), *(b for _, b in folded_idx)]
    next_index = min(total_batches, max([old.next_shard // per, *(i + 1 for i in seen)]))
    live_idx = ranges.normalise((indexes[b.name], indexes[b.name]) for b in live)
    holes = ranges.subtract([(0, next_index - 1)] if next_index else [], ranges.union(folded_idx, live_idx))
    opening: list[planning.BatchPlan] = []
    # issue #26: a batch whose every remaining shard has a pod leaves the window; only the object cap holds it
    # Under Kueue a Job holds its quota until it ends, so an extra batch would only wait: not there.
    draining = 0 if spec.queue else sum(1 for b in live if is_draining(b))
    cap = max(window, min(spec.workers.max, ops.max_live_batches))

    def room() -> bool:
        return len(live) - draining + len(opening) < window and len(live) + len(opening) < cap

    if not suspended:
        for i in _indexes(holes):  # lost batches first, oldest first (bounded by the window)
            if not room():
                break
            if batch_name(name, i) not in taken:
                opening.append(planning.batch_plan(i, shards_per_batch=per, total_shards=total_shards))
        while room() and next_index < total_batches:
            if batch_name(name, next_index) not in taken:
                opening.append(planning.batch_plan(next_index, shards_per_batch=per, total_shards=total_shards))
            next_index += 1
    events: list[Event] = []
    if opening and not own and not folded_idx:
        events.append(Event("Normal", "Planned",
                            f"{spec.samples} samples in {total_shards} shards, {total_batches} batches of "
                            f"{per} shards; at most {window} live at once"))

    # Aggregate the counters of folded and live batches.
    live_done = ranges.union(*[ranges.shift(ranges.parse(b.status.completed_shards), b.spec.shard_start)
                               for b in live]) if live else []
    shards_done = folded.shards + ranges.count(live_done)
    shards_failed = folded.failed_shards
    samples_done = folded.samples + samples_in(spec, live_done)  # committed, quarantined samples included
    cats_done = add_counts(dict(folded.categories), categories_in(spec, live_done))
    # issue #23 item 3: what was kept; samples the quality gate quarantined are counted apart
    quarantined = folded.quarantined_samples + sum(b.status.samples_quarantined for b in live)
    cats_quarantined = dict(folded.quarantined_categories)
    for b in live:
        cats_quarantined = add_counts(cats_quarantined, dict(b.status.quarantined_categories))
    totals = Totals(
        samples_completed=samples_done,
        samples_failed=folded.failed_samples,
        gpu_seconds=round(folded.gpu_seconds + sum(b.status.gpu_seconds for b in live), 3),
        spot_gpu_seconds=round(folded.spot_gpu_seconds + sum(b.status.spot_gpu_seconds for b in live), 3),
        settled_gpu_seconds=folded.gpu_seconds + sum(settled_gpu_seconds(b.status) for b in live),
        preemptions=folded.preemptions + sum(b.status.preemptions for b in live),
        budget_was_exceeded=condition_status(old.conditions, "BudgetExceeded") == "True",
    )
    failed_text = ranges.bounded_text(failed_global, max_spans=ops.max_status_ranges)

    # issue #6: the autoscaler sizes and spreads the workers over the live and the opening batches.
    default_capacity = "spot" if spec.node_pool.spot else "on-demand"
    names = {p.index: batch_name(name, p.index) for p in opening}
    views = [batch_view(b.name, b.spec, b.status) for b in live]
    views += [BatchView(names[p.index], remaining=p.shard_count, parallelism=0, capacity=default_capacity)
              for p in opening]  # opening now: their spec is built once, below, with what the autoscaler gives
    scale = autoscale(spec, totals, views, old.autoscaler, now=now, settings=settings.scaling)
    stop = suspended or bool(spec.queue and scale.budget.exceeded)  # issue #17: a Kueue Job cannot drain
    want = {v.name: 0 if stop else scale.parallelism.get(v.name, 0) for v in views}
    create = [CreateBatch(names[p.index], p.index, RenderBatchSpec(
        dataset=name, shard_start=p.shard_start, shard_count=p.shard_count, parallelism=want[names[p.index]],
        backoff_limit_per_index=spec.retry.per_shard, max_attempts=spec.retry.attempts,
        capacity=scale.capacity_mode,  # type: ignore[arg-type]
    )) for p in opening]
    rescale = [ScaleBatch(b.name, want[b.name]) for b in live if want[b.name] != b.spec.parallelism]

    # Phase, then the finish (index Job) when every shard is committed.
    live_count = len(live) + len(create)
    all_done = not live_count and ranges.count(folded_idx) >= total_batches  # every batch folded, none lost
    degraded = shards_failed > 0  # only shards that exhausted their retries (failed batches are folded)
    if all_done:
        phase = DatasetPhase.DEGRADED if shards_failed else DatasetPhase.SUCCEEDED
    elif suspended:
        phase = DatasetPhase.SUSPENDED
    elif degraded:
        phase = DatasetPhase.DEGRADED
    elif shards_done or live_count:
        phase = DatasetPhase.RUNNING
    else:
        phase = DatasetPhase.PENDING
    finished_event = all_done and phase != old.phase
    conds = set_condition(old.conditions, "SpecValid", True, "Valid", "spec is valid", now=now)
    ready = (all_done and not degraded, phase.value, f"{shards_done}/{total_shards} shards committed")
    progressing = (not all_done and not suspended, "Suspended" if suspended else ("Finished" if all_done else "Rendering"),
                   f"{live_count} live batch(es), {scale.desired} worker(s) desired")
    degraded_cond = (degraded, "ShardsFailed" if degraded else "AsExpected",
                     f"failed shards: {failed_text}" if failed_text else "no failed shards")
    index_status = old.index
    indexed: tuple[bool, str, str] | None = None
    create_index: CreateIndexJob | None = None
    if phase == DatasetPhase.SUCCEEDED and (index_status is None or index_status.phase != "Succeeded"):
        iname = index_job_name(name)
        state = index_job.finished if index_job is not None else None
        if state == "Complete":
            index_status = IndexStatus(phase="Succeeded", job=iname)
            indexed = (True, "IndexWritten", "index/metadata.parquet, metadata.jsonl and dataset.json written")
        elif state == "Failed":
            msg = f"index Job {iname} failed; every shard is committed, rerun with `synthctl index`"
            if index_status is None or index_status.phase != "Failed":
                events.append(Event("Warning", "IndexFailed", msg))
            index_status, phase, finished_event = IndexStatus(phase="Failed", job=iname), DatasetPhase.DEGRADED, False
            indexed = ready = (False, "IndexFailed", msg)
            degraded_cond = (True, "IndexFailed", msg)
        else:
            msg = "every shard committed; writing the index and dataset.json"
            index_status, phase, finished_event = IndexStatus(phase="Running", job=iname), DatasetPhase.RUNNING, False
            indexed = ready = (False, "Indexing", msg)
            progressing = (True, "Indexing", msg)
            if index_job is None:
                create_index = CreateIndexJob(iname, announce=Event(
                    "Normal", "Indexing", f"all shards committed; index Job {iname} started"))
    conds = set_condition(conds, "Ready", *ready, now=now)
    conds = set_condition(conds, "Progressing", *progressing, now=now)
    conds = set_condition(conds, "Degraded", *degraded_cond, now=now)
    if indexed is not None:
        conds = set_condition(conds, "Indexed", *indexed, now=now)
    workers = WorkerCounts(desired=scale.desired, active=scale.active, pending=scale.pending,
                           unschedulable=scale.unschedulable,
                           samples_per_day_each=round(scale.throughput.per_worker_per_day, 1))
    if spec.queue:  # issue #17: a Job Kueue holds is neither a worker nor a failure: show it as waiting
        workers, conds = _admission(workers, conds, live, spec.queue, now=now)
    for c in scale.conditions:
        conds = set_condition(conds, c.type, c.status, c.reason, c.message, now=now)
    if finished_event:
        events.append(Event("Normal" if phase == DatasetPhase.SUCCEEDED else "Warning", "Finished",
                            f"{samples_done - quarantined} samples committed"
                            + (f" ({quarantined} more quarantined)" if quarantined else "")
                            + f", {shards_failed} shard(s) failed"
                            + (f": {failed_text}" if failed_text else "")))
    events += transition_events(old.conditions, scale)

    targets = planning.category_targets(spec)
    new = old.model_copy(update={
        "phase": phase.value,
        "observed_generation": generation,
        "conditions": conds,
        "samples": Counts(target=spec.samples, completed=max(0, samples_done - quarantined),
                          failed=folded.failed_samples, quarantined=quarantined),
        "shards": ShardCounts(total=total_shards, completed=shards_done, failed=shards_failed),
        "categories": {k: CategoryProgress(target=v, completed=max(0, cats_done.get(k, 0) - cats_quarantined.get(k, 0)),
                                           quarantined=cats_quarantined.get(k, 0)) for k, v in targets.items()},
        "schedule": [SegmentStatus.model_validate(s) for s in schedule_status(
            spec, folded.segments or {}, live_done)] if spec.schedule else [],
        "samples_per_day": round(scale.throughput.samples_per_day or 0.0, 1),
        "eta": eta_text(scale, now=now),
        "workers": workers,
        "preemptions": totals.preemptions,
        "retries": folded.retries + sum(b.status.retries for b in live),
        "cost": cost_status(scale),
        "progress": percent(shards_done, total_shards),
        "failed_shards": failed_text or None,
        "next_shard": min(next_index * per, total_shards),
        "index": index_status,
        "capacity_mode": scale.capacity_mode,
        "plan": PlanStatus(shards_per_batch=per, batches=total_batches, live_batches=live_count),
        "folded": folded,
        "gpu_seconds": totals.gpu_seconds,
        "spot_gpu_seconds": totals.spot_gpu_seconds,
        "render_busy_ratio": busy_ratio(folded, live),
        "autoscaler": autoscaler_status(scale),
    })
    # The status first (checked against the observed resourceVersion: a stale status never opens
    # a batch twice), so deletes also come only after the fold is recorded in the status.
    writes: list[Effect] = [create_index] if create_index is not None else []
    writes += [*create, *rescale, *(DeleteBatch(n) for n in delete)]
    effects = ordered(status_patch(old, new), writes, [PostEvent(e) for e in events])
    return DatasetDecision(status=new, effects=effects)


def _indexes(spans: Sequence[ranges.Span]) -> Iterator[int]:
    """Every index of ``spans``, lazily (a caller stops after a window's worth)."""
    for a, b in spans:
        yield from range(a, b + 1)


def _admission(workers: WorkerCounts, conditions: list[Condition], live: Sequence[ObservedBatch], queue: str, *,
               now: datetime) -> tuple[WorkerCounts, list[Condition]]:
    """Workers admitted by Kueue vs waiting for admission, and the ``Admitted`` condition."""
    admitted = sum(b.status.admitted for b in live)
    waiting = sum(b.status.waiting for b in live)
    workers = workers.model_copy(update={"admitted": admitted, "waiting": waiting,
                                         "admission": f"{admitted}/{admitted + waiting}"})
    reason = ("PartiallyAdmitted" if admitted and waiting else "Waiting" if waiting
              else "Admitted" if admitted else "NoJobs")
    conditions = set_condition(conditions, "Admitted", waiting == 0, reason,
                               f"{admitted} pod(s) admitted, {waiting} waiting in Kueue queue {queue}", now=now)
    return workers, conditions
