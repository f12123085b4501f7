"""The simulated cluster: GPU nodes, Kueue, the Job controller and the renderer's pods.

The operator's decisions (driven by :mod:`parallel_synth.simulator.control`) create, resize and
delete Jobs here as they would through the API, from the manifests ``jobs.build_job`` writes;
this module runs them on the simulated clock and answers ``get Job`` and ``list Pods`` with the
typed facts the operator's parser (``decisions.observed``) would make of the API's answers
(:mod:`.objects`). What it simulates:

* nodes: spot and on-demand pools with a GPU limit; a pod takes an idle node or waits
  ``node_provision_seconds`` for a new one; over the limit it is ``Unschedulable``. A pod
  requiring on-demand nodes (the Job's node affinity) goes to the on-demand pool;
* the Job controller: pods for the pending indexes up to ``parallelism`` (an interrupted index
  first), the newest pods deleted first on scale-down, ``backoffLimitPerIndex`` and
  ``maxFailedIndexes``, the ``podFailurePolicy`` (SIGTERM and disruptions are not failures),
  the ``Complete``/``Failed`` conditions;
* the renderer: a pod renders its shard's samples left (a log-normal factor per pod on the
  per-sample time) after its start-up; on SIGTERM (scale-down, eviction, Job deleted) or a spot
  preemption (Poisson per spot pod, ``DisruptionTarget``) it keeps the samples it finished (the
  checkpoint, in the bucket: the index's next pod, of any attempt, resumes there) and exits 143;
* Kueue (with a quota): a queued Job waits suspended and is admitted whole, oldest first, and
  partially when the quota is short (``job-min-parallelism: 1``: Kueue sets its parallelism);
  a Job holds its quota until it finishes (Kueue's dynamic reclaim of a draining Job is not
  simulated); when the quota shrinks, the newest admitted Jobs are evicted (suspended, pods stopped);
* CPU Jobs (the index Job) complete ``index_seconds`` after they are created.

The API drops a terminated pod once a batch reconcile has listed it, unless it was interrupted
and its shard is not committed yet (the operator's ledgers count each pod once either way; this
keeps a reconcile's cost to the live pods). The module also keeps the truth the report needs
(GPU time by capacity, commits, time lost), which the operator never sees.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

from parallel_synth.decisions.cost import Capacity, GpuTime
from parallel_synth.decisions.facts import CONTAINER, JobFacts, PodFacts
from parallel_synth.simulator.clock import END, PREEMPT, READY, Clock
from parallel_synth.simulator.model import SimConfig
from parallel_synth.simulator.objects import (
    GONE,
    PROVISIONING,
    RUNNING,
    WAITING,
    BatchPods,
    Job,
    Pod,
    add_span,
    pod_facts,
)
from synth_contract import planning
from synth_contract.api import LABEL_BATCH, SynthDatasetSpec
from synth_contract.exitcodes import EXIT_ERROR, EXIT_OK, EXIT_SIGTERM


class _Pool:
    __slots__ = ("idle", "limit", "used", "waiting")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.idle = 0
        self.waiting: deque[Pod] = deque()


class Cluster:
    """Nodes, Kueue, Jobs and pods of one simulated dataset (see the module docstring)."""

    def __init__(self, spec: SynthDatasetSpec, cfg: SimConfig, clock: Clock, rng: random.Random, *,
                 seconds_per_sample: float) -> None:
        self.spec = spec
        self.cfg = cfg
        self.clock = clock
        self.rng = rng
        self.sps = seconds_per_sample
        self.gpus = max(1, spec.node_pool.gpus_per_worker)
        default_cap = spec.workers.max * self.gpus
        self.pools = {
            Capacity.SPOT.value: _Pool(default_cap if cfg.spot_gpus is None else cfg.spot_gpus),
            Capacity.ON_DEMAND.value: _Pool(default_cap if cfg.on_demand_gpus is None else cfg.on_demand_gpus),
        }
        if cfg.warm_nodes:
            for pool in self.pools.values():
                pool.idle = pool.limit
        self.jobs: dict[str, Job] = {}
        self.batches: dict[str, BatchPods] = {}
        self.cpu_jobs: dict[str, float] = {}  # CPU Job name -> simulated second it completes
        self._serial = 0
        # the truth (never shown to the operator)
        self.committed_samples = self.committed_shards = self.duplicates = 0
        self.preemptions = self.kueue_evictions = self.stopped = 0
        self.gpu_done = GpuTime()
        self.lost = self.overhead = 0.0
        self.running = self.peak = 0
        self.area = self.last_area_t = 0.0
        # Kueue (issue #17)
        self.quota = cfg.quota_gpus
        self.quota_used = 0
        self.adm_area = self.adm_last_t = 0.0

    # ------------------------------------------------------------------ the API verbs

    def create_job(self, manifest: dict[str, Any]) -> bool:
        """``POST`` a Job; False when one of that name exists (409)."""
        name = str(manifest["metadata"]["name"])
        if name in self.jobs or name in self.cpu_jobs:
            return False
        containers = manifest["spec"]["template"]["spec"]["containers"]
        if containers[0]["name"] != CONTAINER:  # the index Job: CPU only, done after index_seconds
            self.cpu_jobs[name] = self.clock.t + self.cfg.index_seconds
            return True
        batch = self.batch(str(manifest["metadata"]["labels"][LABEL_BATCH]))
        self._serial += 1
        job = Job(manifest, batch, self._serial)
        self.jobs[name] = job
        batch.version += 1
        if job.queued:
            self.admit()
        else:
            self.sync(job)
        return True

    def job(self, name: str) -> JobFacts | None:
        """``GET`` a Job, as the operator observes it (None: not found)."""
        if name in self.cpu_jobs:
            done = self.clock.t >= self.cpu_jobs[name]
            return JobFacts(name=name, parallelism=1, completions=1, active=0 if done else 1,
                            finished="Complete" if done else None)
        job = self.jobs.get(name)
        return job.facts(self.clock.t0) if job is not None else None

    def patch_parallelism(self, name: str, parallelism: int, *, suspend: bool | None = None) -> None:
        job = self.jobs.get(name)
        if job is not None and not job.finished:
            job.parallelism = job.requested = parallelism
            job.batch.version += 1
            if suspend is False:
                job.suspended = False
            self.sync(job)  # a suspended Job's pods go as with parallelism 0
            if suspend:
                job.suspended = True

    def delete_job(self, name: str) -> None:
        """``DELETE`` a Job: its pods get SIGTERM (they checkpoint) and go with it."""
        job = self.jobs.pop(name, None)
        if job is None:
            return
        job.batch.version += 1
        for pod in list(job.active):
            self._interrupt(pod, node_lost=False)
        job.pending.clear()
        if job.queued:
            self._touch_quota()
            self.admit()

    def pods(self, batch: str) -> list[PodFacts]:
        """``list Pods -l batch=NAME``, as the operator observes them."""
        return [pod_facts(p, self.clock.t0) for p in self.batch(batch).pods]

    def listed(self, batch: str) -> None:
        """A reconcile has counted the pods it listed: the ended ones go, unless still unsettled."""
        b = self.batch(batch)
        b.pods = [p for p in b.pods if p.state != GONE or self._unsettled(p)]

    def delete_batch(self, batch: str) -> None:
        """The RenderBatch is deleted: its Jobs and pods go with it (owner references)."""
        for name in [n for n, j in self.jobs.items() if j.batch.name == batch]:
            self.delete_job(name)
        self.batches.pop(batch, None)

    def draining(self, batch: str) -> bool:
        """Whether a Job of the batch has no index left to start (its pods are finishing)."""
        return any(not j.pending and not j.finished for j in self.jobs.values() if j.batch.name == batch)

    def batch(self, name: str) -> BatchPods:
        b = self.batches.get(name)
        if b is None:
            b = self.batches[name] = BatchPods(name)
        return b

    # ------------------------------------------------------------------ the Job controller

    def sync(self, job: Job) -> None:
        """Keep ``parallelism`` pods: create for pending indexes, delete the newest over it."""
        if job.finished or job.suspended or self.jobs.get(job.name) is not job:
            return
        batch = job.batch
        while len(job.active) < job.parallelism and job.pending:
            index = job.pending.popleft()
            shard = job.shard_start + index
            left = 0 if shard in batch.committed else batch.left.get(shard, -1)
            if left < 0:
                left = len(planning.shard_range(self.spec, shard))
            self._serial += 1
            pod = Pod(job, index, left, self._serial)
            job.active.append(pod)
            batch.pods.append(pod)
            self._schedule(pod)
        excess = len(job.active) - job.parallelism
        if excess > 0:
            victims = sorted(job.active, key=lambda p: (p.state == RUNNING, -p.started))[:excess]
            for pod in victims:
                self._interrupt(pod, node_lost=False)

    def _settle(self, job: Job) -> None:
        """Complete or Failed once every index is done or failed (or too many failed)."""
        if job.finished:
            return
        if len(job.failed) > job.max_failed:
            job.finished, job.reason = "Failed", "MaxFailedIndexesExceeded"
        elif len(job.completed) + len(job.failed) >= job.completions:
            job.finished, job.reason = ("Failed", "FailedIndexes") if job.failed else ("Complete", "")
        else:
            return
        job.batch.version += 1
        job.pending.clear()
        for pod in list(job.active):
            self._interrupt(pod, node_lost=False)
        if job.queued:
            self._touch_quota()
            self.admit()

    def _unsettled(self, pod: Pod) -> bool:
        """An interrupted pod whose shard may still render: it stays listed until it settles."""
        job = pod.job
        return (pod.exit_code != EXIT_OK and self.jobs.get(job.name) is job and not job.finished
                and job.shard_start + pod.index not in job.batch.committed and pod.index not in job.failed)

    # ------------------------------------------------------------------ nodes and pods

    def _schedule(self, pod: Pod) -> None:
        pool = self.pools[pod.capacity]
        pod.facts = None
        pod.job.batch.version += 1
        if pool.used + self.gpus <= pool.limit:
            pool.used += self.gpus
            if pool.idle >= self.gpus:
                pool.idle -= self.gpus
                self.start(pod)
            else:
                pod.state = PROVISIONING
                self.clock.push(self.clock.t + self.cfg.node_provision_seconds, READY, pod, pod.version)
        else:
            pod.state = WAITING
            pool.waiting.append(pod)

    def start(self, pod: Pod) -> None:
        """The pod's node is ready: start-up, then its samples (or a preemption first)."""
        t = self.clock.t
        pod.state = RUNNING
        pod.started = t
        pod.facts = None
        pod.job.batch.version += 1
        factor = math.exp(self.rng.gauss(0.0, self.cfg.jitter)) if self.cfg.jitter > 0 else 1.0
        pod.duration = pod.left * self.sps / self.gpus * factor
        end = t + self.cfg.pod_startup_seconds + pod.duration
        self._set_running(+1)
        if pod.capacity == Capacity.SPOT.value and self.cfg.preemption_rate > 0:
            # Poisson while the storm lasts: a pod started before the window is exposed from its start
            # (memoryless), not only if a draw from its own start happens to land inside the window.
            w = self.cfg.preemption_window
            at = max(t, w[0] * 86400.0 if w else t) + self.rng.expovariate(self.cfg.preemption_rate / 3600.0)
            if at < end and self._storm_at(at):
                self.clock.push(at, PREEMPT, pod, pod.version)
                return
        self.clock.push(end, END, pod, pod.version)

    def _storm_at(self, t: float) -> bool:
        w = self.cfg.preemption_window
        return w is None or w[0] * 86400.0 <= t < w[1] * 86400.0

    def integrate(self) -> None:
        """Bring the running-pods and admitted-GPUs integrals up to now (day and report boundaries)."""
        self._set_running(0)
        self._touch_quota()

    def _set_running(self, delta: int) -> None:
        t = self.clock.t
        self.area += self.running * (t - self.last_area_t)
        self.last_area_t = t
        self.running += delta
        self.peak = max(self.peak, self.running)

    def _release(self, pod: Pod, *, node_lost: bool, exit_code: int) -> None:
        """The pod ends: free its GPUs (the node stays idle unless it was preempted)."""
        pool = self.pools[pod.capacity]
        if pod.state in (RUNNING, PROVISIONING):
            pool.used -= self.gpus
            if not node_lost:
                pool.idle += self.gpus
        ran = pod.state == RUNNING
        if ran:
            self._set_running(-1)
        pod.state = GONE
        pod.ended = self.clock.t
        pod.exit_code = exit_code
        pod.version += 1
        pod.facts = None
        pod.job.batch.version += 1
        pod.job.active.remove(pod)
        if not ran:  # never started: it vanishes, nothing to account
            pod.job.batch.pods.remove(pod)
        while pool.waiting and pool.used + self.gpus <= pool.limit:
            nxt = pool.waiting.popleft()
            if nxt.state == WAITING:
                self._schedule(nxt)

    def _charge(self, pod: Pod) -> float:
        """Account the pod's GPU time (it is ending now); returns the seconds charged."""
        if pod.state != RUNNING:
            return 0.0
        seconds = (self.clock.t - pod.started) * self.gpus
        self.gpu_done = self.gpu_done.add(pod.capacity, seconds)
        return seconds

    def _interrupt(self, pod: Pod, *, node_lost: bool, evicted: bool = False) -> None:
        """SIGTERM (or a lost node): checkpoint, the index pending again, first in line."""
        job, batch = pod.job, pod.job.batch
        self.stopped += pod.state == RUNNING and not node_lost and not evicted
        shard = job.shard_start + pod.index
        seconds = self._charge(pod)
        saved = 0
        if pod.state == RUNNING and self.cfg.checkpoint and pod.duration > 0:
            rendering = self.clock.t - pod.started - self.cfg.pod_startup_seconds
            saved = max(0, min(pod.left - 1, int(rendering / (pod.duration / pod.left))))
            self.lost += seconds - saved * pod.duration / pod.left * self.gpus
        else:
            self.lost += seconds
        batch.pending_gpu[shard] = batch.pending_gpu.get(shard, 0.0) + seconds
        if pod.left > 0:
            batch.left[shard] = pod.left - saved
        pod.disrupted = node_lost
        self._release(pod, node_lost=node_lost, exit_code=EXIT_SIGTERM)
        if not job.finished and self.jobs.get(job.name) is job:
            job.pending.appendleft(pod.index)

    def preempt(self, pod: Pod) -> Job:
        """A spot node is reclaimed under the pod."""
        self.preemptions += 1
        self._interrupt(pod, node_lost=True)
        self.sync(pod.job)
        return pod.job

    def end(self, pod: Pod) -> Job:
        """The pod's render ends: the shard commits, or the render failed (``failure_rate``)."""
        job, batch = pod.job, pod.job.batch
        shard = job.shard_start + pod.index
        seconds = self._charge(pod) + batch.pending_gpu.pop(shard, 0.0)
        if self.cfg.failure_rate > 0 and self.rng.random() < self.cfg.failure_rate:
            self.lost += seconds
            job.failed_pods += 1
            tries = job.index_failures.get(pod.index, 0) + 1
            job.index_failures[pod.index] = tries
            self._release(pod, node_lost=False, exit_code=EXIT_ERROR)
            if tries > job.per_index:
                job.failed.add(pod.index)
            else:
                batch.pending_gpu[shard] = seconds
                job.pending.appendleft(pod.index)
        else:
            self.overhead += self.cfg.pod_startup_seconds * self.gpus
            self._release(pod, node_lost=False, exit_code=EXIT_OK)
            job.completed.add(pod.index)
            add_span(job.done_spans, pod.index)
            batch.left.pop(shard, None)
            if shard in batch.committed:
                self.duplicates += pod.left > 0
            else:
                batch.committed.add(shard)
                self.committed_samples += len(planning.shard_range(self.spec, shard))
                self.committed_shards += 1
        self._settle(job)
        self.sync(job)
        return job

    # ------------------------------------------------------------------ Kueue

    def _touch_quota(self) -> None:
        """Integrate the admitted GPUs up to now and count them again."""
        if self.quota is None:
            return
        t = self.clock.t
        self.adm_area += self.quota_used * (t - self.adm_last_t)
        self.adm_last_t = t
        self.quota_used = sum(j.parallelism for j in self._admitted()) * self.gpus

    def _admitted(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.queued and j.admitted and not j.suspended and not j.finished]

    def admit(self) -> None:
        """Kueue admits waiting Jobs, oldest first, partially when the quota is short."""
        if self.quota is None:
            return
        self._touch_quota()
        waiting = sorted((j for j in self.jobs.values() if j.queued and j.suspended and not j.finished),
                         key=lambda j: j.created)
        for job in waiting:
            room = (self.quota - self.quota_used) // self.gpus
            if room < 1:
                break
            job.parallelism = max(1, min(job.requested, room))
            job.suspended = False
            self._serial += 1
            job.admitted = self._serial
            job.reason = ""
            job.batch.version += 1
            self.quota_used += job.parallelism * self.gpus
            self.sync(job)

    def set_quota(self, limit: int) -> None:
        """The quota changes; above it, Kueue evicts the newest admitted Jobs (their pods checkpoint)."""
        self._touch_quota()
        self.quota = limit
        for job in sorted(self._admitted(), key=lambda j: j.admitted, reverse=True):
            if self.quota_used <= limit:
                break
            self.quota_used -= job.parallelism * self.gpus
            job.suspended, job.admitted, job.reason = True, 0, "Preempted"
            job.parallelism = job.requested
            job.batch.version += 1
            for pod in list(job.active):
                self.kueue_evictions += 1
                self.preemptions += pod.state == RUNNING
                self._interrupt(pod, node_lost=False, evicted=True)
        self._touch_quota()

