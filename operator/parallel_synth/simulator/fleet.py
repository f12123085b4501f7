"""A discrete-event simulation of a rendering fleet, driving the real operator decisions.

Why: to size a run (days, GPUs, dollars) before spending money, and to test the autoscaler
against preemption storms, capacity shortages and budgets without a cluster.

What is real and what is simulated:

* real: the planner (:mod:`synth_contract.planning`), the Job manifests (``jobs.build_job``) and
  the operator's decisions, as :mod:`.control` drives them: ``decide_batch`` (Job attempts,
  retries, preemptions and GPU time read from the pods) and ``decide_dataset`` (window, folding,
  status aggregation, the autoscaler, cost and budget, the index Job that finishes the dataset);
* simulated (:mod:`.cluster`): GPU nodes (spot and on-demand pools with a capacity limit and a
  provisioning delay), the Job controller, render times (the per-sample time times a log-normal
  factor per pod), spot preemptions (Poisson per spot pod), render failures, the renderer's
  checkpoint on SIGTERM, and Kueue admission under a quota (issue #17; ``quota_schedule``: the
  quota changes, another team reclaims its share, and Kueue evicts the newest Jobs).

Granularity: events are pod starts, shard completions, preemptions, operator reconciles and
day boundaries, kept in a heap on a simulated clock (:mod:`.clock`). Nothing is ever done per
sample, so a 500M-sample plan (500k shards) runs in seconds. The dataset reconcile runs every
``tick_seconds``, and ``reconcile_seconds`` after a batch's Job finishes; between two, when a
Job runs out of indexes to start while its pods finish, the hand-over gives the freed workers
to the next batches (the autoscaler's real ``distribute`` of the current desired count).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from parallel_synth.decisions.autoscale import batch_view
from parallel_synth.decisions.cost import Capacity, GpuTime, dollars
from parallel_synth.decisions.scaling import distribute
from parallel_synth.decisions.status import is_finished
from parallel_synth.decisions.throughput import SECONDS_PER_DAY
from parallel_synth.settings import OperatorSettings, ScalingSettings, Settings
from parallel_synth.simulator import clock as ev
from parallel_synth.simulator.cluster import Cluster
from parallel_synth.simulator.control import Operator
from parallel_synth.simulator.model import DayStats, SimConfig, SimReport
from parallel_synth.simulator.objects import RUNNING, Job
from synth_contract import multiview, planning
from synth_contract.api import SynthDatasetSpec, SynthDatasetStatus


class Simulation:
    """One dataset on a simulated fleet. Use :func:`simulate`."""

    def __init__(self, name: str, spec: SynthDatasetSpec, config: SimConfig) -> None:
        self.name = name
        if config.quota_gpus is not None and not spec.queue:  # a quota means Kueue: the operator behaves so
            spec = spec.model_copy(update={"queue": "simulated"})
        self.spec = spec
        self.cfg = config
        self.sps = config.gpu_seconds_per_sample or multiview.estimated_gpu_seconds_per_sample(spec)  # all views
        self.clock = ev.Clock(config.start)
        self.cluster = Cluster(spec, config, self.clock, random.Random(config.seed), seconds_per_sample=self.sps)
        settings = Settings(operator=OperatorSettings(dataset_interval=config.tick_seconds),
                            scaling=ScalingSettings(tick_seconds=config.tick_seconds))
        self.operator = Operator(name, spec, self.cluster, self.clock, settings)
        self.shards_total = planning.shard_count(spec)
        self.events = self.ticks = self.handovers = 0
        self.budget_stop: float | None = None
        self.switches: list[tuple[float, str]] = []
        self.mode = ""
        self.days: list[DayStats] = []
        self.quick_pending = self.full_pending = False
        self._day_mark = (0, 0.0, 0.0, 0.0)  # samples, area, dollars, lost at the last day boundary
        self.adm_day_mark = 0.0

    @property
    def status(self) -> SynthDatasetStatus:
        return self.operator.status

    # ------------------------------------------------------------------ the operator's reconciles

    def _on_tick(self) -> None:
        """The operator's reconciles: every RenderBatch, then the dataset."""
        self.ticks += 1
        self.operator.reconcile_batches()
        self.operator.reconcile_dataset()
        mode = self.status.capacity_mode or ""
        if mode != self.mode:
            self.switches.append((self.clock.t / SECONDS_PER_DAY, mode))
            self.mode = mode
        budget = next((c for c in self.status.conditions if c.type == "BudgetExceeded"), None)
        if budget is not None and budget.status == "True" and self.budget_stop is None:
            self.budget_stop = self.clock.t / SECONDS_PER_DAY

    def _on_handover(self) -> None:
        """Between ticks: give the workers a drained batch freed to the next batches."""
        desired = self.status.autoscaler.desired
        if desired is None:
            return
        self.handovers += 1
        self.operator.reconcile_batches([n for n in self.operator.batches if self.cluster.draining(n)],
                                        changed_only=True)
        live = [batch_view(b.name, b.spec, b.status) for b in self.operator.batches.values()
                if not is_finished(b.status.phase)]
        parallelism = distribute(int(desired), live, mode=self.mode or Capacity.SPOT.value)
        changed = [b.name for b in live if parallelism.get(b.name, b.parallelism) != b.parallelism]
        for name in changed:
            self.operator.set_parallelism(name, parallelism[name])
        # a batch that only shrinks while its Job has nothing left to start: the Job would not
        # change (no pod is deleted or created), so its timer's patch is left to the next tick
        grow = [b.name for b in live if b.name in changed
                and (parallelism[b.name] > b.parallelism or not self.cluster.draining(b.name))]
        self.operator.reconcile_batches(grow)

    def _after_pod(self, job: Job) -> None:
        """A Job has free slots but nothing to start: the operator will move them soon.

        A finished Job needs the whole reconcile (its batch ends, the dataset folds it and opens
        the next); otherwise the hand-over of the freed workers is enough.
        """
        if job.finished:
            if not self.full_pending:
                self.full_pending = True
                self.clock.push(self.clock.t + self.cfg.reconcile_seconds, ev.FULL)
        elif not job.pending and not self.quick_pending and len(job.active) < self.operator.parallelism(job.batch.name):
            self.quick_pending = True
            self.clock.push(self.clock.t + self.cfg.reconcile_seconds, ev.QUICK)

    def _on_quota(self, limit: int) -> None:
        """Kueue's quota changes: evictions first (the batches see them), then admissions."""
        self.cluster.set_quota(limit)
        self.operator.reconcile_batches()
        self.cluster.admit()

    # ------------------------------------------------------------------ days and the report

    def _gpu_now(self) -> GpuTime:
        acc = self.cluster.gpu_done
        gpus = self.cluster.gpus
        for job in self.cluster.jobs.values():
            for p in job.active:
                if p.state == RUNNING:
                    acc = acc.add(p.capacity, (self.clock.t - p.started) * gpus)
        return acc

    def _on_day(self) -> None:
        c = self.cluster
        c.integrate()
        spent = dollars(self._gpu_now(), self.spec.pricing)
        samples0, area0, dollars0, lost0 = self._day_mark
        workers = self.status.workers
        self.days.append(
            DayStats(
                day=len(self.days) + 1,
                samples=c.committed_samples - samples0,
                cumulative=c.committed_samples,
                workers=(c.area - area0) / SECONDS_PER_DAY,
                desired=workers.desired,
                pending=workers.pending,
                dollars=spent - dollars0,
                cumulative_dollars=spent,
                measured_per_day=self.status.samples_per_day,
                target_per_day=self.spec.throughput.target_per_day,
                capacity_mode=self.mode,
                lost_gpu_hours=(c.lost - lost0) / 3600.0,
                admitted_gpus=(c.adm_area - self.adm_day_mark) / SECONDS_PER_DAY,
                quota_gpus=c.quota,
            )
        )
        self.adm_day_mark = c.adm_area
        self._day_mark = (c.committed_samples, c.area, spent, c.lost)

    def _done(self) -> bool:
        return self.cluster.committed_shards + self.operator.failed_shards >= self.shards_total

    def _idle_after_budget(self) -> bool:
        return self.budget_stop is not None and not any(j.active for j in self.cluster.jobs.values())

    def run(self, *, progress: Callable[[DayStats], None] | None = None) -> SimReport:
        wall = time.perf_counter()
        clock = self.clock
        limit = (self.cfg.days if self.cfg.days is not None else self.cfg.max_days) * SECONDS_PER_DAY
        clock.push(0.0, ev.TICK)
        clock.push(SECONDS_PER_DAY, ev.DAY)
        if self.cluster.quota is not None:
            for day, gpus in self.cfg.quota_schedule:
                clock.push(day * SECONDS_PER_DAY, ev.QUOTA, int(gpus))
        while clock.heap:
            t, kind, obj, version = clock.pop()
            if t > limit:
                clock.t = limit
                break
            clock.t = t
            if kind in (ev.END, ev.PREEMPT, ev.READY):
                if obj.version != version:
                    continue  # stale: the pod was deleted or preempted meanwhile
                self.events += 1
                if kind == ev.READY:
                    self.cluster.start(obj)
                    continue
                job = self.cluster.end(obj) if kind == ev.END else self.cluster.preempt(obj)
                if self._done():
                    break
                self._after_pod(job)
            elif kind in (ev.TICK, ev.FULL, ev.BATCH):
                if kind == ev.BATCH:
                    self.operator.reconcile_batch(obj)  # its timer after a retry's backoff
                else:
                    self._on_tick()
                if self._done() or self._idle_after_budget():
                    break  # shards failed for good are known once decide_batch has failed their batch
                if kind == ev.TICK:
                    clock.push(t + self.cfg.tick_seconds, ev.TICK)
                self.full_pending = self.full_pending and kind != ev.FULL
            elif kind == ev.QUICK:
                self.quick_pending = False
                self._on_handover()
            elif kind == ev.QUOTA:
                self._on_quota(obj)
            elif kind == ev.DAY:
                self._on_day()
                if progress is not None:
                    progress(self.days[-1])
                clock.push(t + SECONDS_PER_DAY, ev.DAY)
        if clock.t > len(self.days) * SECONDS_PER_DAY:
            self._on_day()  # the last, partial day
        end = clock.t
        self.cluster.integrate()
        admitted = self.cluster.adm_area / end if end > 0 and self.cluster.quota is not None else 0.0
        self._on_tick()  # a final reconcile so the status shows the end state
        self._finish_index()
        return self._report(end, admitted, time.perf_counter() - wall)

    def _finish_index(self) -> None:
        """Every shard committed: reconcile once the index Job is done, so the dataset ends Succeeded."""
        for _ in range(2):
            index = self.status.index
            if not (self._done() and index is not None and index.phase == "Running"):
                return
            self.clock.t = max([self.clock.t, *self.cluster.cpu_jobs.values()])
            self._on_tick()

    def _mean_quota(self, end: float) -> float:
        """The quota averaged over the simulated time."""
        q0 = float(self.cfg.quota_gpus or 0)
        if end <= 0:
            return q0
        area, t, q = 0.0, 0.0, q0
        for day, gpus in sorted(self.cfg.quota_schedule):
            at = min(day * SECONDS_PER_DAY, end)
            area += q * max(0.0, at - t)
            t, q = max(t, at), float(gpus)
        return (area + q * max(0.0, end - t)) / end

    def _report(self, end: float, admitted: float, wall: float) -> SimReport:
        c = self.cluster
        gpu = self._gpu_now()
        spent = dollars(gpu, self.spec.pricing)
        elapsed = end / SECONDS_PER_DAY
        full = [d for d in self.days if d.day <= int(elapsed)]
        steady = full[1:] if len(full) > 2 else full
        attained = (
            sum(d.samples for d in steady) / len(steady)
            if steady
            else (c.committed_samples / elapsed if elapsed > 0 else 0.0)
        )
        target = self.spec.throughput.target_per_day
        quota = self.cfg.quota_gpus
        return SimReport(
            dataset=self.name,
            samples_target=self.spec.samples,
            finished=self._done(),
            stopped_by_budget=self.budget_stop is not None and not self._done(),
            elapsed_days=elapsed,
            samples_completed=c.committed_samples,
            shards_total=self.shards_total,
            shards_completed=c.committed_shards,
            shards_failed=self.operator.failed_shards,
            duplicate_commits=c.duplicates,
            preemptions=c.preemptions,
            retries=self.status.retries,
            spot_gpu_hours=gpu.spot / 3600.0,
            on_demand_gpu_hours=gpu.on_demand / 3600.0,
            lost_gpu_hours=c.lost / 3600.0,
            overhead_gpu_hours=c.overhead / 3600.0,
            dollars=spent,
            dollars_per_1k_samples=spent / c.committed_samples * 1000.0 if c.committed_samples else 0.0,
            projected_dollars=self.status.cost.projected_dollars or spent,
            target_per_day=target,
            attained_per_day=attained,
            gpus_for_target=target * self.sps / SECONDS_PER_DAY if target else None,
            workers_max=self.spec.workers.max,
            budget_dollars=self.spec.budget.max_dollars,
            peak_workers=c.peak,
            budget_stop_day=self.budget_stop,
            capacity_switches=self.switches,
            event_reasons=self.operator.event_reasons,
            ticks=self.ticks,
            handovers=self.handovers,
            events=self.events,
            wall_seconds=wall,
            days=self.days,
            final_status=self.status.wire(),
            quota_gpus=quota,
            quota_per_day=self._mean_quota(end) * SECONDS_PER_DAY / self.sps if quota else None,
            quota_schedule=tuple(q for q in self.cfg.quota_schedule if q[0] * SECONDS_PER_DAY < end),
            quota_final_per_day=(c.quota or 0) * SECONDS_PER_DAY / self.sps if quota else None,
            admitted_gpus=admitted,
            kueue_evictions=c.kueue_evictions,
            stopped_pods=c.stopped,
            batches={**self.operator.folded, **{n: b.status.wire() for n, b in self.operator.batches.items()}},
        )


def simulate(
    name: str,
    spec: SynthDatasetSpec,
    config: SimConfig | None = None,
    *,
    progress: Callable[[DayStats], None] | None = None,
) -> SimReport:
    """Simulate one dataset from an empty status until it is done (or ``config.days``)."""
    return Simulation(name, spec, config or SimConfig()).run(progress=progress)


def start_after(config: SimConfig, report: SimReport) -> SimConfig:
    """The config of a phase that starts when the previous one ended (same fleet, same seed)."""
    return replace(config, start=config.start + timedelta(days=report.elapsed_days), seed=config.seed + 1)
