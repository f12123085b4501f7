"""Decision: the Job attempts of one RenderBatch, from its Job and Pods.

Pure: the observed state (the batch's spec and typed status, the current attempt's Job and its
Pods as typed facts, node labels, ``now``) in; the new :class:`RenderBatchStatus` and the ordered
effects (patch status, create/scale/delete the Job, post Events) out. ``cluster/reconcile``
observes and applies; nothing here talks to the API.

Attempts: attempt 1 covers the whole batch; a failed attempt is retried (after a backoff) on the
smallest window holding every shard still missing; a batch fails when its attempts are spent,
when a pod exits 2 (bad configuration) or when the quality gate failed its last missing shards.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from parallel_synth.decisions import cost, kueue
from parallel_synth.decisions.effects import (
    CreateJob,
    DeleteJob,
    Effect,
    Event,
    PostEvent,
    ScaleJob,
    events_of,
    ordered,
    status_patch,
)
from parallel_synth.decisions.facts import JobFacts, PodFacts, owned_by
from parallel_synth.decisions.jobs import JobRequest, job_name
from parallel_synth.decisions.status import (
    Ledger,
    account_pods,
    add_counts,
    is_finished,
    offsets_exited_with,
    pod_counts,
    samples_in,
    set_condition,
    unlisted,
    unsettled_gpu_seconds,
)
from parallel_synth.settings import OperatorSettings, Settings
from synth_contract import ranges
from synth_contract.api import BatchPhase, RenderBatchSpec, RenderBatchStatus, SynthDatasetSpec
from synth_contract.exitcodes import EXIT_BAD_CONFIG, EXIT_QUALITY_GATE
from synth_contract.times import format_time, parse_time


@dataclass(frozen=True)
class BatchDecision:
    """What to do for one RenderBatch now: its new status and the effects, in order."""

    status: RenderBatchStatus
    effects: tuple[Effect, ...] = ()

    @property
    def create_job(self) -> JobRequest | None:
        return next((e.request for e in self.effects if isinstance(e, CreateJob)), None)

    @property
    def patch_parallelism(self) -> int | None:
        return next((e.parallelism for e in self.effects if isinstance(e, ScaleJob)), None)

    @property
    def delete_jobs(self) -> list[str]:
        return [e.name for e in self.effects if isinstance(e, DeleteJob)]

    @property
    def events(self) -> list[Event]:
        return events_of(self.effects)


def retry_backoff(attempt: int, settings: OperatorSettings) -> float:
    """Seconds to wait before attempt ``attempt`` (>= 2): base x 2^(attempt-2), capped."""
    return float(min(settings.retry_backoff_seconds * 2 ** max(0, attempt - 2), settings.retry_backoff_max_seconds))


def _window(missing: list[ranges.Span]) -> tuple[int, int]:
    """Offset and completions of the smallest window holding all missing offsets."""
    first, last = missing[0][0], missing[-1][1]
    return first, last - first + 1


def _running_phase(spec: RenderBatchSpec) -> str:
    return (BatchPhase.SUSPENDED if spec.parallelism == 0 else BatchPhase.RUNNING).value


def _retried_pods(job: JobFacts, pods: Sequence[PodFacts], current: str) -> int:
    """The Job's failed pods that count as retries: all of ``status.failed`` but the pods that
    exited 2 or 3, which the pod failure policy never retries (FailJob, FailIndex).

    The real Job controller counts those in ``status.failed`` too: a bad configuration whose two
    pods both exited 2 showed ``retries: 2`` when nothing was retried (issue #21, seen on the
    real control plane; no emulated Job had failed pods when it failed by FailJob)."""
    final = sum(1 for p in pods if p.job == current and p.phase == "Failed"
                and p.exit_code in (EXIT_BAD_CONFIG, EXIT_QUALITY_GATE))
    return max(0, job.failed_pods - final)


def _counts(spec: SynthDatasetSpec, batch: RenderBatchSpec, completed: list[ranges.Span],
            failed: list[ranges.Span], *, quarantined: int = 0) -> dict[str, Any]:
    """The count fields of a batch status for its committed and failed offsets; ``samplesCompleted``
    counts what was kept (``quarantined`` samples of committed shards apart, issue #23 item 3)."""
    done = ranges.count(completed)
    return {
        "completed_shards": ranges.format_spans(completed),
        "failed_shards": ranges.format_spans(failed),
        "shards_done": done,
        "samples_completed": max(0, samples_in(spec, ranges.shift(completed, batch.shard_start)) - quarantined),
        "progress": f"{done}/{batch.shard_count}",
    }


class _Out:
    """The decision being built: status field updates (each field set once per path) and effects."""

    def __init__(self, old: RenderBatchStatus) -> None:
        self.old = old
        self.fields: dict[str, Any] = {}
        self.effects: list[Effect] = []
        self.events: list[Event] = []

    def set(self, **fields: Any) -> None:
        """Write status fields; each at most once per decision (one writer, no overwrites)."""
        twice = self.fields.keys() & fields.keys()
        assert not twice, f"status fields written twice: {sorted(twice)}"
        self.fields.update(fields)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def condition(self, ok: bool, reason: str, message: str, *, now: datetime) -> None:
        self.fields["conditions"] = set_condition(self.old.conditions, "Ready", ok, reason, message, now=now)

    def done(self, *, create: CreateJob | None = None, scale: ScaleJob | None = None,
             delete: str | None = None) -> BatchDecision:
        new = self.old.model_copy(update=self.fields)
        writes: list[Effect] = [e for e in (create, scale, DeleteJob(delete) if delete is not None else None)
                                if e is not None]
        effects = ordered(status_patch(self.old, new), writes, [PostEvent(e) for e in self.events])
        return BatchDecision(status=new, effects=effects)


def decide_batch(
    *,
    dataset: str,
    namespace: str,
    name: str,
    spec: RenderBatchSpec,
    status: RenderBatchStatus,
    dataset_spec: SynthDatasetSpec,
    job: JobFacts | None,
    pods: Sequence[PodFacts],
    generation: int,
    now: datetime,
    settings: Settings,
    node_labels: Mapping[str, Mapping[str, str]] | None = None,
    gone_pods: Sequence[PodFacts] = (),
    uid: str | None = None,
) -> BatchDecision:
    """Reconcile one batch: start, watch, retry or finish its Job attempts.

    ``job`` is the current attempt's Job (None: not created yet, or gone), ``pods`` the batch's
    pods. ``node_labels`` (node name -> labels) splits GPU time into spot and on-demand by the
    node each pod ran on; a pod whose node is unknown (gone, or no labels given) counts as the
    batch's capacity type. ``gone_pods``: the last state of pods the pod watch saw disrupted or
    deleted (``cluster/pods.py``); those not in ``pods`` count in preemptions and GPU time too
    (each pod once, by the same ledgers). ``uid``: the RenderBatch's own uid; a Job whose
    controller is another object, and pods labelled with another batch's uid, are not this
    batch's (a predecessor of the same name still being garbage-collected): never adopted.
    """
    out = _Out(status)
    out.set(observed_generation=generation)
    if is_finished(status.phase):
        return out.done()
    if job is not None and not owned_by(job.owner_uid, uid):
        out.set(message=f"Job {job.name} belongs to an earlier RenderBatch of this name; waiting for it to go")
        return out.done()
    pods = [p for p in pods if owned_by(p.batch_uid, uid)]
    gone_pods = [p for p in gone_pods if owned_by(p.batch_uid, uid)]
    ops = settings.operator
    attempt = status.attempt
    all_offsets = [(0, spec.shard_count - 1)]
    prior_done = ranges.parse(status.completed_shards)

    def request(att: int, missing: list[ranges.Span]) -> JobRequest:
        offset, completions = _window(missing)
        return JobRequest(dataset=dataset, namespace=namespace, batch=name, batch_spec=spec, attempt=att,
                          shard_offset=offset, completions=completions, parallelism=spec.parallelism)

    queued = bool(dataset_spec.queue)  # issue #17: Kueue admits (unsuspends) the Jobs, see kueue.py
    if attempt == 0:
        first = job_name(name, 1)
        out.set(attempt=1, job=first,
                **_counts(dataset_spec, spec, prior_done, [], quarantined=status.samples_quarantined))
        if queued and spec.parallelism == 0:  # a Kueue Job is sized once: created when pods are wanted
            out.set(phase=_running_phase(spec))
            return out.done()
        if queued:
            out.set(phase=BatchPhase.PENDING.value,
                    message=f"waiting for Kueue admission (queue {dataset_spec.queue})")
        else:
            out.set(phase=_running_phase(spec))
        started = Event("Normal", "BatchStarted",
                        f"Job {first}: shards {spec.shard_start}-{spec.shard_start + spec.shard_count - 1}")
        return out.done(create=CreateJob(request(1, all_offsets), announce=started))

    current = job_name(name, attempt)
    done = ranges.clip(ranges.union(prior_done, job.completed if job else []), 0, spec.shard_count - 1)
    missing = ranges.subtract(all_offsets, done)
    # Exit 3 (the quality gate failed the shard): failed for good by the Job's FailIndex rule, and
    # never put in a later attempt, where the same seeds would fail again (synth_contract.exitcodes).
    gate_failed = ranges.subtract(ranges.union(
        ranges.parse(status.quality_failed_shards),
        offsets_exited_with(pods, exit_code=EXIT_QUALITY_GATE, job_name=current,
                            shard_offset=job.shard_offset) if job is not None else []), done)
    if gate_failed:
        out.set(quality_failed_shards=ranges.format_spans(gate_failed))
        missing = ranges.subtract(missing, gate_failed)

    # Pods: preemptions once per pod, GPU time once per finished pod, spot time by node label.
    batch_spot = spec.capacity == "spot" and dataset_spec.node_pool.spot

    @functools.cache
    def is_spot(node: str) -> bool:  # once per node, not once per pod
        if node_labels is not None and node in node_labels:
            return cost.capacity_of_node(node_labels[node]) == cost.Capacity.SPOT
        return batch_spot

    preempted_ledger = Ledger.load(status.preempted_pods, status.preempted_before)
    preemptions = status.preemptions
    admission = kueue.admission(job) if queued else kueue.Admission()
    evicted = kueue.eviction(was_admitted=status.admitted, job=job, pods=pods) if queued else None
    if evicted is not None:  # issue #17: Kueue took the quota back: preemptions, not a retry
        counted = preempted_ledger.names
        fresh = [n for n in evicted.names if n not in counted]
        lost = len(fresh) if evicted.names else evicted.pods
        preempted_ledger = preempted_ledger.add([(now.timestamp(), n) for n in fresh], limit=ops.max_remembered_pods)
        preemptions += lost
        out.set(evictions=status.evictions + 1)
        out.event("Warning", "Evicted",
                  f"Kueue evicted Job {current} ({evicted.reason}: {evicted.message}); {lost} pod(s) "
                  "preempted, not retried: it resumes from committed shards when readmitted")
    # What happens to the attempt decides the counters below, so every field is written once.
    final = job is not None and job.finished == "Failed" and (
        attempt >= spec.max_attempts or job.reason == "PodFailurePolicy")
    if not missing:
        outcome = "gate-failed" if gate_failed else "succeeded"
    elif job is None:
        outcome = "no-job"
    elif job.finished == "Failed":
        outcome = "failed" if final else "retry"
    else:
        outcome = "paused" if queued and spec.parallelism == 0 else "running"
    stopped = outcome in ("gate-failed", "succeeded", "failed")
    if queued:
        out.set(admitted=0 if outcome == "paused" else admission.admitted,
                waiting=0 if outcome == "paused" else admission.waiting)
    accounted = [*pods, *unlisted(pods, gone_pods)]  # finding 6: pods lost between two ticks
    acc = account_pods(
        accounted,
        gpus=dataset_spec.node_pool.gpus_per_worker,
        preemptions=preemptions,
        gpu_seconds_finished=status.gpu_seconds_finished,
        finished=Ledger.load(status.finished_pods, status.finished_before),
        preempted=preempted_ledger,
        now=now,
        limit=ops.max_remembered_pods,
        spot_gpu_seconds_finished=status.spot_gpu_seconds_finished,
        is_spot=is_spot,
    )
    counts = pod_counts(pods, now=now, tick_seconds=settings.scaling.tick_seconds)
    failed_now = job.failed if job else []
    failed_spans = {"gate-failed": gate_failed, "failed": ranges.union(missing, gate_failed),
                    "retry": []}.get(outcome, ranges.subtract(failed_now, done))
    prior_failed = status.prior_failed_pods + (_retried_pods(job, accounted, current) if job else 0)
    # issue #6: GPU time of settled shards only (the autoscaler's rate is samples / this)
    unsettled = unsettled_gpu_seconds(
        accounted, settled=ranges.union(done, failed_now), shard_offset=job.shard_offset if job else 0,
        job_name=current if job else None, gpus=dataset_spec.node_pool.gpus_per_worker)
    out.set(
        preemptions=acc.preemptions,
        gpu_seconds_finished=round(acc.gpu_seconds_finished, 3),
        gpu_seconds=round(acc.gpu_seconds_finished + acc.gpu_seconds_live, 3),
        spot_gpu_seconds_finished=round(acc.spot_gpu_seconds_finished, 3),
        spot_gpu_seconds=round(acc.spot_gpu_seconds_finished + acc.spot_gpu_seconds_live, 3),
        finished_pods=acc.finished.dump(),
        finished_before=acc.finished.before,
        preempted_pods=acc.preempted.dump(),
        preempted_before=acc.preempted.before,
        active=0 if stopped else acc.active,
        pending=0 if stopped else acc.pending,
        established=counts.established,
        unschedulable=counts.unschedulable,
        retries=attempt + prior_failed if outcome == "retry" else (attempt - 1) + prior_failed,
        gpu_seconds_settled=round(max(0.0, acc.gpu_seconds_finished - unsettled), 3),
        samples_quarantined=status.samples_quarantined + acc.quarantined,
        render_call_seconds=round(status.render_call_seconds + acc.render_call_seconds, 3),
        main_thread_seconds=round(status.main_thread_seconds + acc.main_thread_seconds, 3),
        quarantined_categories=add_counts(dict(status.quarantined_categories), acc.quarantined_categories),
        **_counts(dataset_spec, spec, done, failed_spans, quarantined=status.samples_quarantined + acc.quarantined),
    )
    if acc.new_preemptions:
        out.event("Warning", "Preempted",
                  f"{len(acc.new_preemptions)} pod(s) preempted: {', '.join(acc.new_preemptions[:5])}")

    if outcome == "gate-failed":
        why = "the quality gate failed them (exit 3; not retried with the same seeds)"
        message = f"shards {ranges.format_spans(gate_failed)} failed: {why}"
        out.set(phase=BatchPhase.FAILED.value, message=message)
        out.condition(False, "QualityGate", message, now=now)
        out.event("Warning", "BatchFailed",
                  f"shards {ranges.format_spans(ranges.shift(gate_failed, spec.shard_start))} failed: {why}")
        return out.done()

    if outcome == "succeeded":
        out.set(phase=BatchPhase.SUCCEEDED.value, message="all shards committed")
        out.condition(True, "Succeeded", "all shards committed", now=now)
        out.event("Normal", "BatchFinished", f"{spec.shard_count} shards committed in {attempt} attempt(s)")
        return out.done()

    if job is None:
        # The current attempt's Job is not there yet: create it once the backoff is over.
        if queued and spec.parallelism == 0:  # paused under Kueue: no Job until pods are wanted again
            out.set(phase=_running_phase(spec), message="paused: no Job while no pods are wanted (Kueue-managed)")
            return out.done()
        out.set(phase=_running_phase(spec))
        retry_after = parse_time(status.retry_after)
        if retry_after is not None and now < retry_after:
            return out.done()
        out.set(job=current)
        return out.done(create=CreateJob(request(attempt, missing)))

    if job.finished == "Failed":
        if outcome == "failed":
            why = ("a pod exited with code 2 (bad configuration; retrying cannot help)"
                   if job.reason == "PodFailurePolicy" else f"{attempt} attempt(s) failed")
            message = f"{why}: {job.reason} {job.message}".strip()
            out.set(phase=BatchPhase.FAILED.value, message=message)
            out.condition(False, "Failed", message, now=now)
            out.event("Warning", "BatchFailed",
                      f"shards {ranges.format_spans(ranges.shift(missing, spec.shard_start))} failed: {why}")
            return out.done()
        nxt = attempt + 1
        wait = retry_backoff(nxt, ops)
        out.set(
            attempt=nxt,
            job=job_name(name, nxt),
            prior_failed_pods=prior_failed,
            retry_after=format_time(now + timedelta(seconds=wait)),
            phase=_running_phase(spec),
            message=f"attempt {attempt} failed ({job.reason}); attempt {nxt} in {wait:.0f}s",
        )
        out.event("Warning", "BatchRetried",
                  f"attempt {attempt} failed ({job.reason}); attempt {nxt} renders shards "
                  f"{ranges.format_spans(ranges.shift(missing, spec.shard_start))} in {wait:.0f}s")
        return out.done(delete=current)

    # Running: keep the Job's parallelism equal to the batch's.
    out.set(job=current)
    if queued:
        return _queued_running(out, spec, current, admission, queue=str(dataset_spec.queue))
    out.set(phase=_running_phase(spec))
    completions = job.completions or spec.shard_count
    want = max(0, min(spec.parallelism, completions))
    pause = want == 0  # issue #22 item 7: a paused Job is suspended, so its activeDeadlineSeconds stops
    changed = job.parallelism != want or job.suspended != pause
    return out.done(scale=ScaleJob(job.name, want, completions, suspend=pause) if changed else None)


def _queued_running(out: _Out, spec: RenderBatchSpec, current: str, admission: kueue.Admission, *,
                    queue: str) -> BatchDecision:
    """A live Kueue-managed Job: never resized, never (un)suspended by us; deleted to pause.

    See :mod:`parallel_synth.decisions.kueue` for why: Kueue owns ``suspend`` and refuses resizes
    of an admitted Job, so the autoscaler's new parallelism applies to the batch's next Job, and a
    batch wanted at zero pods (dataset suspended, budget) loses its Job and keeps its shards.
    """
    if spec.parallelism == 0:  # admitted/waiting are already 0: the Job goes
        out.set(phase=BatchPhase.SUSPENDED.value,
                message="paused: Job deleted (Kueue-managed Jobs are never unsuspended by the operator)")
        out.event("Normal", "BatchPaused", f"Job {current} deleted; pods checkpoint, "
                  "committed shards are kept, a new Job is queued when pods are wanted")
        return out.done(delete=current)
    if admission.is_waiting:
        out.set(phase=BatchPhase.PENDING.value,
                message=f"{admission.waiting} pod(s) waiting for Kueue admission (queue {queue})")
    else:
        out.set(phase=BatchPhase.RUNNING.value, message=f"{admission.admitted} pod(s) admitted by Kueue")
    return out.done()
