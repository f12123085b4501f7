"""Decisions: the sliding window of RenderBatches of a dataset, and the attempts of one batch.

Pure functions from the observed state (dataset spec and status, live batches, the current Job,
its Pods, ``now``) to a decision (the new status, the children to create, patch or delete, the
Events to post). The handlers apply decisions; nothing here talks to the API.

Window: at most ``min(workers.max, settings.max_live_batches)`` unfinished batches live at
once, whatever the dataset's size. A finished batch is folded into ``status.folded`` (its index
recorded in ``folded.batches``) in one status write, and deleted afterwards: a restart between
the two sees the index already folded and only deletes, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from parallel_synth.cluster.pods import unlisted
from parallel_synth.decisions import cost, kueue, scaling
from parallel_synth.decisions.curation import done_shards, segment_progress
from parallel_synth.decisions.jobs import (
    CONTAINER,
    EXIT_QUALITY_GATE,
    JobProgress,
    JobRequest,
    job_name,
    job_progress,
    shard_offset_of,
    short_name,
)
from parallel_synth.decisions.status import (
    Ledger,
    account_pods,
    add_counts,
    batch_counts,
    categories_in,
    fill_rates_and_cost,
    is_finished,
    parse_time,
    percent,
    progress_with_job,
    rfc3339,
    samples_in,
    set_condition,
)
from parallel_synth.settings import OperatorSettings
from synth_contract import exitcodes, planning, ranges
from synth_contract.api import (
    BatchPhase,
    DatasetPhase,
    RenderBatchSpec,
    SynthDatasetSpec,
    SynthDatasetStatus,
)

LABEL_INDEX = "parallelsynth.io/batch-index"


@dataclass(frozen=True)
class EventSpec:
    """An Event to post about an object: ``Normal`` or ``Warning``."""

    type: str
    reason: str
    message: str


def batch_name(dataset: str, index: int) -> str:
    """Deterministic RenderBatch name: ``{dataset}-b{index}`` (63 characters at most)."""
    return short_name(dataset, f"-b{index}")


# =========================================================================== one batch


@dataclass(frozen=True)
class BatchDecision:
    """What to do for one RenderBatch now."""

    status: dict[str, Any]
    create_job: JobRequest | None = None
    patch_parallelism: int | None = None
    delete_jobs: list[str] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)


def retry_backoff(attempt: int, settings: OperatorSettings) -> float:
    """Seconds to wait before attempt ``attempt`` (>= 2): base x 2^(attempt-2), capped."""
    return float(min(settings.retry_backoff_seconds * 2 ** max(0, attempt - 2), settings.retry_backoff_max_seconds))


def _window(missing: list[ranges.Span]) -> tuple[int, int]:
    """Offset and completions of the smallest window holding all missing offsets."""
    first, last = missing[0][0], missing[-1][1]
    return first, last - first + 1


def decide_batch(
    *,
    dataset: str,
    namespace: str,
    name: str,
    spec: RenderBatchSpec,
    status: dict[str, Any] | None,
    dataset_spec: SynthDatasetSpec,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    generation: int,
    now: datetime,
    settings: OperatorSettings,
    node_labels: Mapping[str, Mapping[str, str]] | None = None,
    gone_pods: Sequence[dict[str, Any]] = (),
) -> BatchDecision:
    """Reconcile one batch: start, watch, retry or finish its Job attempts.

    ``node_labels`` (node name -> labels) splits GPU time into spot and on-demand by the node each
    pod ran on; a pod whose node is unknown (gone, or no labels given) counts as the batch's
    capacity type. ``gone_pods``: the last state of pods the pod watch saw disrupted or deleted
    (:mod:`parallel_synth.cluster.pods`); those not in ``pods`` count in preemptions and GPU time too
    (each pod once, by the same ledgers).
    """
    st: dict[str, Any] = dict(status or {})
    st["observedGeneration"] = generation
    events: list[EventSpec] = []
    phase = st.get("phase")
    if is_finished(phase):
        return BatchDecision(status=st)
    attempt = int(st.get("attempt") or 0)
    all_offsets = [(0, spec.shard_count - 1)]
    prior_done = ranges.parse(st.get("completedShards"))

    def request(att: int, missing: list[ranges.Span]) -> JobRequest:
        offset, completions = _window(missing)
        return JobRequest(dataset=dataset, namespace=namespace, batch=name, batch_spec=spec, attempt=att,
                          shard_offset=offset, completions=completions, parallelism=spec.parallelism)

    queued = bool(dataset_spec.queue)  # issue #17: Kueue admits (unsuspends) the Jobs, see kueue.py
    if attempt == 0:
        st.update(attempt=1, job=job_name(name, 1), phase=_running_phase(spec))
        st.update(batch_counts(st, spec=dataset_spec, shard_start=spec.shard_start,
                               shard_count=spec.shard_count, completed=prior_done, failed=[]))
        if queued and spec.parallelism == 0:
            return BatchDecision(status=st)  # a Kueue Job is sized once: created when pods are wanted
        if queued:
            st.update(phase=BatchPhase.PENDING.value, message=f"waiting for Kueue admission (queue {dataset_spec.queue})")
        events.append(EventSpec("Normal", "BatchStarted",
                                f"Job {st['job']}: shards {spec.shard_start}-{spec.shard_start + spec.shard_count - 1}"))
        return BatchDecision(status=st, create_job=request(1, all_offsets), events=events)

    current = job_name(name, attempt)
    prog: JobProgress | None = job_progress(job) if job is not None else None
    done = progress_with_job(prior_done, prog, spec.shard_count)
    missing = ranges.subtract(all_offsets, done)
    # Exit 3 (the quality gate failed the shard): failed for good by the Job's FailIndex rule, and
    # never put in a later attempt, where the same seeds would fail again (exitcodes.py).
    gate_failed = ranges.subtract(ranges.union(
        ranges.parse(st.get("qualityFailedShards")),
        exitcodes.offsets_exited_with(pods, exit_code=EXIT_QUALITY_GATE, container=CONTAINER, job_name=current,
                                      shard_offset=shard_offset_of(job)) if job is not None else []), done)
    if gate_failed:
        st["qualityFailedShards"] = ranges.format_spans(gate_failed)
        missing = ranges.subtract(missing, gate_failed)

    # Pods: preemptions once per pod, GPU time once per finished pod, spot time by node label.
    batch_spot = spec.capacity == "spot" and dataset_spec.node_pool.spot

    def is_spot(node: str) -> bool:
        if node_labels is not None and node in node_labels:
            return cost.capacity_of_node(node_labels[node]) == cost.Capacity.SPOT
        return batch_spot

    preempted_ledger = Ledger.load(st.get("preemptedPods") or [], float(st.get("preemptedBefore") or 0.0))
    preemptions = int(st.get("preemptions") or 0)
    admission = kueue.admission(job) if queued else kueue.Admission()
    evicted = kueue.eviction(was_admitted=int(st.get("admitted") or 0), job=job, pods=pods,
                             job_name=current) if queued else None
    if evicted is not None:  # issue #17: Kueue took the quota back: preemptions, not a retry
        counted = {n for _, n in preempted_ledger.entries}
        fresh = [n for n in evicted.names if n not in counted]
        lost = len(fresh) if evicted.names else evicted.pods
        preempted_ledger = preempted_ledger.add([(now.timestamp(), n) for n in fresh],
                                                limit=settings.max_remembered_pods)
        preemptions += lost
        st["evictions"] = int(st.get("evictions") or 0) + 1
        events.append(EventSpec("Warning", "Evicted",
                                f"Kueue evicted Job {current} ({evicted.reason}: {evicted.message}); {lost} pod(s) "
                                "preempted, not retried: it resumes from committed shards when readmitted"))
    if queued:
        st.update(admitted=admission.admitted, waiting=admission.waiting)
    accounted = pods + unlisted(pods, gone_pods)  # finding 6: pods lost between two ticks
    acc = account_pods(
        accounted,
        gpus=dataset_spec.node_pool.gpus_per_worker,
        preemptions=preemptions,
        gpu_seconds_finished=float(st.get("gpuSecondsFinished") or 0.0),
        finished=Ledger.load(st.get("finishedPods") or [], float(st.get("finishedBefore") or 0.0)),
        preempted=preempted_ledger,
        now=now,
        limit=settings.max_remembered_pods,
        spot_gpu_seconds_finished=float(st.get("spotGpuSecondsFinished") or 0.0),
        is_spot=is_spot,
    )
    gpu_total = acc.gpu_seconds_finished + acc.gpu_seconds_live
    st.update(
        preemptions=acc.preemptions,
        gpuSecondsFinished=round(acc.gpu_seconds_finished, 3),
        gpuSeconds=round(gpu_total, 3),
        spotGpuSecondsFinished=round(acc.spot_gpu_seconds_finished, 3),
        spotGpuSeconds=round(acc.spot_gpu_seconds_finished + acc.spot_gpu_seconds_live, 3),
        finishedPods=acc.finished.dump(),
        finishedBefore=acc.finished.before,
        preemptedPods=acc.preempted.dump(),
        preemptedBefore=acc.preempted.before,
        active=acc.active,
        pending=acc.pending,
        **scaling.pod_counts(pods, now=now, settings=_scaling_settings(settings)).status(),
    )
    if acc.new_preemptions:
        events.append(EventSpec("Warning", "Preempted",
                                f"{len(acc.new_preemptions)} pod(s) preempted: {', '.join(acc.new_preemptions[:5])}"))
    prior_failed = int(st.get("priorFailedPods") or 0)
    st["retries"] = (attempt - 1) + prior_failed + (prog.failed_pods if prog else 0)
    failed_now = prog.failed if prog else []
    st.update(batch_counts(st, spec=dataset_spec, shard_start=spec.shard_start, shard_count=spec.shard_count,
                           completed=done, failed=ranges.subtract(failed_now, done)))
    st["completedShards"] = ranges.format_spans(done)
    # issue #6: GPU time of settled shards only (the autoscaler's rate is samples / this)
    unsettled = scaling.unsettled_gpu_seconds(
        accounted, settled=ranges.union(done, failed_now), shard_offset=shard_offset_of(job) if job else 0,
        job_name=current if job else None, gpus=dataset_spec.node_pool.gpus_per_worker)
    st["gpuSecondsSettled"] = round(max(0.0, acc.gpu_seconds_finished - unsettled), 3)

    if not missing and gate_failed:
        why = "the quality gate failed them (exit 3; not retried with the same seeds)"
        st.update(phase=BatchPhase.FAILED.value, failedShards=ranges.format_spans(gate_failed), active=0, pending=0,
                  message=f"shards {ranges.format_spans(gate_failed)} failed: {why}")
        st["conditions"] = set_condition(st.get("conditions") or [], "Ready", False, "QualityGate",
                                         st["message"], now=now)
        events.append(EventSpec("Warning", "BatchFailed",
                                f"shards {ranges.format_spans(ranges.shift(gate_failed, spec.shard_start))} "
                                f"failed: {why}"))
        return BatchDecision(status=st, events=events)

    if not missing:
        st.update(phase=BatchPhase.SUCCEEDED.value, active=0, pending=0, message="all shards committed")
        st["conditions"] = set_condition(st.get("conditions") or [], "Ready", True, "Succeeded",
                                         st["message"], now=now)
        events.append(EventSpec("Normal", "BatchFinished",
                                f"{spec.shard_count} shards committed in {attempt} attempt(s)"))
        return BatchDecision(status=st, events=events)

    if prog is None:
        # The current attempt's Job is not there yet: create it once the backoff is over.
        retry_after = parse_time(st.get("retryAfter"))
        st["phase"] = _running_phase(spec)
        if queued and spec.parallelism == 0:  # paused under Kueue: no Job until pods are wanted again
            st["message"] = "paused: no Job while no pods are wanted (Kueue-managed)"
            return BatchDecision(status=st, events=events)
        if retry_after is not None and now < retry_after:
            return BatchDecision(status=st, events=events)
        st["job"] = current
        return BatchDecision(status=st, create_job=request(attempt, missing), events=events)

    if prog.finished == "Failed":
        final = attempt >= spec.max_attempts or prog.reason == "PodFailurePolicy"
        if final:
            why = ("a pod exited with code 2 (bad configuration; retrying cannot help)"
                   if prog.reason == "PodFailurePolicy" else f"{attempt} attempt(s) failed")
            st.update(phase=BatchPhase.FAILED.value, failedShards=ranges.format_spans(ranges.union(missing, gate_failed)),
                      active=0, pending=0, message=f"{why}: {prog.reason} {prog.message}".strip())
            st["conditions"] = set_condition(st.get("conditions") or [], "Ready", False, "Failed",
                                             st["message"], now=now)
            events.append(EventSpec("Warning", "BatchFailed",
                                    f"shards {ranges.format_spans(ranges.shift(missing, spec.shard_start))} "
                                    f"failed: {why}"))
            return BatchDecision(status=st, events=events)
        nxt = attempt + 1
        wait = retry_backoff(nxt, settings)
        st.update(
            attempt=nxt,
            job=job_name(name, nxt),
            priorFailedPods=prior_failed + prog.failed_pods,
            retryAfter=rfc3339(now + timedelta(seconds=wait)),
            failedShards="",
            phase=_running_phase(spec),
            message=f"attempt {attempt} failed ({prog.reason}); attempt {nxt} in {wait:.0f}s",
        )
        st["retries"] = (nxt - 1) + st["priorFailedPods"]
        events.append(EventSpec("Warning", "BatchRetried",
                                f"attempt {attempt} failed ({prog.reason}); attempt {nxt} renders shards "
                                f"{ranges.format_spans(ranges.shift(missing, spec.shard_start))} in {wait:.0f}s"))
        return BatchDecision(status=st, delete_jobs=[current], events=events)

    # Running: keep the Job's parallelism equal to the batch's.
    st["phase"] = _running_phase(spec)
    st["job"] = current
    if queued:
        return _queued_running(st, spec, current, admission, events, queue=str(dataset_spec.queue))
    patch = None
    completions = int(((job or {}).get("spec") or {}).get("completions") or spec.shard_count)
    want = max(0, min(spec.parallelism, completions))
    if prog.parallelism != want:
        patch = want
    return BatchDecision(status=st, patch_parallelism=patch, events=events)


def _queued_running(st: dict[str, Any], spec: RenderBatchSpec, current: str, admission: kueue.Admission,
                    events: list[EventSpec], *, queue: str) -> BatchDecision:
    """A live Kueue-managed Job: never resized, never (un)suspended by us; deleted to pause.

    See :mod:`parallel_synth.decisions.kueue` for why: Kueue owns ``suspend`` and refuses resizes of an
    admitted Job, so the autoscaler's new parallelism applies to the batch's next Job, and a
    batch wanted at zero pods (dataset suspended, budget) loses its Job and keeps its shards.
    """
    if spec.parallelism == 0:
        st.update(phase=BatchPhase.SUSPENDED.value, admitted=0, waiting=0,
                  message="paused: Job deleted (Kueue-managed Jobs are never unsuspended by the operator)")
        events.append(EventSpec("Normal", "BatchPaused", f"Job {current} deleted; pods checkpoint, "
                                "committed shards are kept, a new Job is queued when pods are wanted"))
        return BatchDecision(status=st, delete_jobs=[current], events=events)
    if admission.is_waiting:
        st.update(phase=BatchPhase.PENDING.value,
                  message=f"{admission.waiting} pod(s) waiting for Kueue admission (queue {queue})")
    else:
        st.update(phase=BatchPhase.RUNNING.value, message=f"{admission.admitted} pod(s) admitted by Kueue")
    return BatchDecision(status=st, events=events)


def _running_phase(spec: RenderBatchSpec) -> str:
    return (BatchPhase.SUSPENDED if spec.parallelism == 0 else BatchPhase.RUNNING).value


# =========================================================================== the window


@dataclass(frozen=True)
class BatchView:
    """A live RenderBatch as the dataset sees it."""

    name: str
    index: int
    spec: RenderBatchSpec
    status: dict[str, Any]
    deleting: bool = False

    @property
    def finished(self) -> bool:
        return is_finished(self.status.get("phase"))

    @property
    def remaining(self) -> int:
        return self.spec.shard_count - int(self.status.get("shardsDone") or 0)


def batch_view(body: dict[str, Any], per: int) -> BatchView:
    spec = RenderBatchSpec.model_validate(body.get("spec") or {})
    labels = (body.get("metadata") or {}).get("labels") or {}
    index = int(labels.get(LABEL_INDEX, spec.shard_start // max(per, 1)))
    return BatchView(name=body["metadata"]["name"], index=index, spec=spec, status=dict(body.get("status") or {}),
                     deleting=bool(body["metadata"].get("deletionTimestamp")))


def _scaling_settings(settings: OperatorSettings) -> scaling.ScalingSettings:
    """The autoscaler ticks with the dataset reconcile (issue #6)."""
    return scaling.ScalingSettings(tick_seconds=settings.dataset_interval, max_live_batches=settings.max_live_batches)


def autoscale(
    spec: SynthDatasetSpec, status: dict[str, Any], batches: list[BatchView], *, now: datetime,
    settings: OperatorSettings,
) -> scaling.Decision:
    """The autoscaler's decision for the live batches (issue #6, :mod:`parallel_synth.decisions.scaling`)."""
    live = [scaling.LiveBatch(b.name, b.spec.shard_count, b.spec.parallelism, b.spec.capacity, b.status)
            for b in batches if not b.finished]
    return scaling.autoscale(spec, status, live, now=now, settings=_scaling_settings(settings))


def desired_parallelism(
    spec: SynthDatasetSpec, batches: list[BatchView], *, suspended: bool, scaled: dict[str, int] | None = None
) -> dict[str, int]:
    """HOOK for issue #6 (autoscaler): pods wanted per live batch.

    Currently ``workers.max`` spread evenly over the unfinished batches (earlier batches get
    the remainder), each capped by its shards still to render, what a capped batch cannot use
    going to the others (water-filling); 0 for all when suspended.
    """
    live = [b for b in sorted(batches, key=lambda b: b.index) if not b.finished]
    if suspended or not live:
        return {b.name: 0 for b in live}
    if scaled is not None:  # the autoscaler's distribution
        return {b.name: scaled.get(b.name, 0) for b in live}
    caps = [max(0, b.remaining) for b in live]
    alloc = [0] * len(live)
    budget = spec.workers.max
    open_idx = [i for i, c in enumerate(caps) if c > 0]
    while budget > 0 and open_idx:
        share, extra = divmod(budget, len(open_idx))
        still_open = []
        for k, i in enumerate(open_idx):
            give = min(share + (1 if k < extra else 0), caps[i] - alloc[i])
            alloc[i] += give
            budget -= give
            if alloc[i] < caps[i]:
                still_open.append(i)
        open_idx = still_open
    return {b.name: alloc[i] for i, b in enumerate(live)}


@dataclass(frozen=True)
class NewBatch:
    """A RenderBatch to create."""

    name: str
    index: int
    spec: RenderBatchSpec


@dataclass(frozen=True)
class DatasetDecision:
    """What to do for one dataset now (applied in order: create, patch, status, delete)."""

    status: dict[str, Any]
    create: list[NewBatch] = field(default_factory=list)
    set_parallelism: dict[str, int] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)


def window_size(spec: SynthDatasetSpec, settings: OperatorSettings, per: int) -> int:
    """Live RenderBatches allowed at once: bounded by the workers' maximum, never by the size.

    Enough batches to give every worker a shard (``ceil(workers.max / per)``) plus one, so the
    pods of a batch draining its last shards move on at once; never more than ``workers.max``
    or ``settings.max_live_batches``. Fewer, fuller batches mean fewer objects to poll.
    """
    enough = -(-spec.workers.max // max(per, 1)) + 1
    return max(1, min(spec.workers.max, settings.max_live_batches, enough))


def decide_dataset(
    *,
    name: str,
    spec: SynthDatasetSpec,
    status: dict[str, Any] | None,
    batches: list[dict[str, Any]],
    generation: int,
    now: datetime,
    settings: OperatorSettings,
) -> DatasetDecision:
    """Fold finished batches, open new ones up to the window, aggregate the status."""
    old = dict(status or {})
    st = SynthDatasetStatus.model_validate(old).model_dump(by_alias=True, mode="json", exclude_none=True)
    st = {**old, **st}
    events: list[EventSpec] = []
    total_shards = planning.shard_count(spec)
    plan = dict(st.get("plan") or {})
    per = int(plan.get("shardsPerBatch") or 0) or planning.shards_per_batch(spec)
    total_batches = -(-total_shards // per)
    folded = dict(st.get("folded") or {})
    folded_idx = ranges.parse(folded.get("batches"))
    failed_global = ranges.parse_bounded(st.get("failedShards"))

    views = [batch_view(b, per) for b in batches]
    delete: list[str] = []
    live: list[BatchView] = []
    for v in views:
        if ranges.contains(folded_idx, v.index):
            if not v.deleting:
                delete.append(v.name)  # folded earlier; only the delete was missing
        elif v.deleting and not v.finished:
            continue  # deleted by someone else before it finished (see known gaps)
        elif v.finished:
            folded = _fold(folded, v, spec)
            folded_idx = ranges.union(folded_idx, [(v.index, v.index)])
            failed_global = ranges.union(
                failed_global, ranges.shift(ranges.parse(v.status.get("failedShards")), v.spec.shard_start))
            delete.append(v.name)
        else:
            live.append(v)
    folded["batches"] = ranges.format_spans(folded_idx)

    # Open new batches up to the window.
    suspended = spec.suspend
    seen = [v.index for v in views] + [b for _, b in folded_idx]
    next_index = max([int(st.get("nextShard") or 0) // per, *(i + 1 for i in seen)])
    create: list[NewBatch] = []
    if not suspended:
        while len(live) + len(create) < window_size(spec, settings, per) and next_index < total_batches:
            p = _plan(next_index, per, total_shards)
            bspec = RenderBatchSpec(
                dataset=name, shard_start=p.shard_start, shard_count=p.shard_count, parallelism=0,
                backoff_limit_per_index=spec.retry.per_shard, max_attempts=spec.retry.attempts,
                capacity="spot" if spec.node_pool.spot else "on-demand",
            )
            create.append(NewBatch(batch_name(name, next_index), next_index, bspec))
            next_index += 1
    new_views = [BatchView(c.name, c.index, c.spec, {}) for c in create]
    if create and not views and not folded_idx:
        events.append(EventSpec("Normal", "Planned",
                                f"{spec.samples} samples in {total_shards} shards, {total_batches} batches of "
                                f"{per} shards; at most {window_size(spec, settings, per)} live at once"))

    # Aggregate.
    live_all = live + new_views
    live_done = [ranges.shift(ranges.parse(v.status.get("completedShards")), v.spec.shard_start) for v in live]
    live_done_spans = ranges.union(*live_done) if live_done else []
    shards_done = int(folded.get("shards") or 0) + ranges.count(live_done_spans)
    shards_failed = int(folded.get("failedShards") or 0)
    samples_done = int(folded.get("samples") or 0) + samples_in(spec, live_done_spans)
    samples_failed = int(folded.get("failedSamples") or 0)
    cats_done = add_counts(dict(folded.get("categories") or {}), categories_in(spec, live_done_spans))
    targets = planning.category_targets(spec)
    st.update(
        observedGeneration=generation,
        nextShard=min(next_index * per, total_shards),
        plan={"shardsPerBatch": per, "batches": total_batches, "liveBatches": len(live_all)},
        folded=folded,
        samples={"target": spec.samples, "completed": samples_done, "failed": samples_failed},
        shards={"total": total_shards, "completed": shards_done, "failed": shards_failed},
        categories={k: {"target": v, "completed": cats_done.get(k, 0)} for k, v in targets.items()},
        preemptions=int(folded.get("preemptions") or 0) + sum(int(v.status.get("preemptions") or 0) for v in live),
        retries=int(folded.get("retries") or 0) + sum(int(v.status.get("retries") or 0) for v in live),
        gpuSeconds=round(float(folded.get("gpuSeconds") or 0.0)
                         + sum(float(v.status.get("gpuSeconds") or 0.0) for v in live), 3),
        spotGpuSeconds=round(float(folded.get("spotGpuSeconds") or 0.0)
                             + sum(float(v.status.get("spotGpuSeconds") or 0.0) for v in live), 3),
        workers={**dict(st.get("workers") or {}),
                 "active": sum(int(v.status.get("active") or 0) for v in live),
                 "pending": sum(int(v.status.get("pending") or 0) for v in live)},
        progress=percent(shards_done, total_shards),
        capacityMode="spot" if spec.node_pool.spot else "on-demand",
    )
    if spec.schedule:  # issue #16: category progress per schedule segment
        st["schedule"] = segment_progress(spec, done_shards(folded_idx, per, total_shards, failed_global,
                                                            live_done_spans))
    else:
        st.pop("schedule", None)
    failed_text = ranges.bounded_text(failed_global, max_spans=settings.max_status_ranges)
    if failed_text:
        st["failedShards"] = failed_text
    else:
        st.pop("failedShards", None)

    # issue #6: the autoscaler sizes and spreads the workers on the counters just aggregated
    scale = autoscale(spec, st, live + new_views, now=now, settings=settings)
    want = desired_parallelism(spec, live + new_views, suspended=suspended, scaled=scale.parallelism)
    if spec.queue and scale.budget.exceeded:  # issue #17: a Kueue Job cannot drain (no resize): stop it
        want = {k: 0 for k in want}
    create = [NewBatch(c.name, c.index, c.spec.model_copy(
        update={"parallelism": want.get(c.name, 0), "capacity": scale.capacity_mode})) for c in create]
    set_par = {v.name: want[v.name] for v in live if v.name in want and want[v.name] != v.spec.parallelism}
    st["workers"]["desired"] = scale.desired

    all_done = not live_all and next_index >= total_batches
    degraded = shards_failed > 0  # only shards that exhausted their retries (failed batches are folded)
    if all_done:
        phase = DatasetPhase.DEGRADED if shards_failed else DatasetPhase.SUCCEEDED
    elif suspended:
        phase = DatasetPhase.SUSPENDED
    elif degraded:
        phase = DatasetPhase.DEGRADED
    elif shards_done or live_all:
        phase = DatasetPhase.RUNNING
    else:
        phase = DatasetPhase.PENDING
    if phase != old.get("phase") and all_done:
        events.append(EventSpec("Normal" if phase == DatasetPhase.SUCCEEDED else "Warning", "Finished",
                                f"{samples_done} samples committed, {shards_failed} shard(s) failed"
                                + (f": {failed_text}" if failed_text else "")))
    st["phase"] = phase.value
    conds = st.get("conditions") or []
    conds = set_condition(conds, "SpecValid", True, "Valid", "spec is valid", now=now)
    conds = set_condition(conds, "Ready", all_done and not degraded, phase.value,
                          f"{shards_done}/{total_shards} shards committed", now=now)
    conds = set_condition(conds, "Progressing", not all_done and not suspended,
                          "Suspended" if suspended else ("Finished" if all_done else "Rendering"),
                          f"{len(live_all)} live batch(es), {st['workers']['desired']} worker(s) desired", now=now)
    conds = set_condition(conds, "Degraded", degraded, "ShardsFailed" if degraded else "AsExpected",
                          f"failed shards: {failed_text}" if failed_text else "no failed shards", now=now)
    st["conditions"] = conds
    st = fill_rates_and_cost(st, spec, now=now)
    # issue #6: measured rate, ETA, workers, cost, capacity mode, autoscaler state and conditions
    st.update(scale.status(now=now))
    if spec.queue:  # issue #17: a Job Kueue holds is neither a worker nor a failure: show it as waiting
        st["workers"], st["conditions"] = _admission(st["workers"], st["conditions"], live, spec.queue, now=now)
    for c in scale.conditions:
        st["conditions"] = set_condition(st["conditions"], c["type"], c["status"], c["reason"], c["message"],
                                         now=now)
    events += [EventSpec(*e) for e in scaling.transition_events(old, scale)]
    return DatasetDecision(status=st, create=create, set_parallelism=set_par, delete=delete, events=events)


def _admission(workers: dict[str, Any], conditions: list[dict[str, Any]], live: list[BatchView], queue: str, *,
               now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Workers admitted by Kueue vs waiting for admission, and the ``Admitted`` condition."""
    admitted = sum(int(v.status.get("admitted") or 0) for v in live)
    waiting = sum(int(v.status.get("waiting") or 0) for v in live)
    workers = {**workers, "admitted": admitted, "waiting": waiting, "admission": f"{admitted}/{admitted + waiting}"}
    reason = ("PartiallyAdmitted" if admitted and waiting else "Waiting" if waiting
              else "Admitted" if admitted else "NoJobs")
    conditions = set_condition(conditions, "Admitted", waiting == 0, reason,
                               f"{admitted} pod(s) admitted, {waiting} waiting in Kueue queue {queue}", now=now)
    return workers, conditions


def invalid_status(
    status: dict[str, Any] | None, errors: list[str], *, generation: int, now: datetime
) -> dict[str, Any]:
    """Status of a dataset whose spec is invalid: SpecValid=False with the fields and reasons."""
    st = dict(status or {})
    message = "; ".join(errors)
    st["conditions"] = set_condition(st.get("conditions") or [], "SpecValid", False, "InvalidSpec", message, now=now)
    st["conditions"] = set_condition(st["conditions"], "Ready", False, "InvalidSpec", message, now=now)
    st.update(phase=DatasetPhase.FAILED.value, observedGeneration=generation)
    return st


def _plan(index: int, per: int, total: int) -> planning.BatchPlan:
    start = index * per
    return planning.BatchPlan(index=index, shard_start=start, shard_count=min(per, total - start))


def _fold(folded: dict[str, Any], v: BatchView, spec: SynthDatasetSpec) -> dict[str, Any]:
    done = ranges.shift(ranges.parse(v.status.get("completedShards")), v.spec.shard_start)
    failed = ranges.subtract(
        ranges.shift(ranges.parse(v.status.get("failedShards")), v.spec.shard_start), done)
    s = v.status
    return {
        **folded,
        "samples": int(folded.get("samples") or 0) + samples_in(spec, done),
        "shards": int(folded.get("shards") or 0) + ranges.count(done),
        "failedShards": int(folded.get("failedShards") or 0) + ranges.count(failed),
        "failedSamples": int(folded.get("failedSamples") or 0) + samples_in(spec, failed),
        "preemptions": int(folded.get("preemptions") or 0) + int(s.get("preemptions") or 0),
        "retries": int(folded.get("retries") or 0) + int(s.get("retries") or 0),
        "gpuSeconds": round(float(folded.get("gpuSeconds") or 0.0) + float(s.get("gpuSeconds") or 0.0), 3),
        "spotGpuSeconds": round(float(folded.get("spotGpuSeconds") or 0.0)
                                + float(s.get("spotGpuSeconds") or 0.0), 3),
        "categories": add_counts(dict(folded.get("categories") or {}), categories_in(spec, done)),
    }
