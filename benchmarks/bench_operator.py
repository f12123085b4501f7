"""Operator core benchmark: planning time, live objects, status size, API requests per shard.

Runs the operator's real reconcile functions (``parallel_synth.cluster.reconcile``) on a simulated clock
against an in-memory API (the adapter boundary is replaced, nothing inside the call chain),
with a simulated Job controller that completes one shard per pod every ``--shard-seconds``.

    python benchmarks/bench_operator.py [--shard-seconds 300] [--failure-rate 0.01] [--quick]

Prints, for datasets of 10^4, 10^6 and 5x10^8 samples: planning time, live objects, largest
status in bytes (target < 64 KiB) and API requests per completed shard; then requests per shard
as shards per batch grow (target: falling); then requests per shard under Kueue (``spec.queue``,
a simulated Kueue admitting suspended Jobs within a GPU quota) vs without (issue #17).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import copy
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from parallel_synth.cluster.kube import Conflict, Resource
from parallel_synth.cluster.observe import job_facts
from parallel_synth.cluster.reconcile import reconcile_batch, reconcile_dataset
from parallel_synth.decisions import kueue
from parallel_synth.decisions.dataset import decide_dataset
from parallel_synth.settings import Settings
from synth_contract import planning, ranges
from synth_contract.api import SynthDatasetSpec, SynthDatasetStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class MemoryKube:
    """The adapter's interface over a dict, counting requests like ``kube.Kube`` does."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()

    def _key(self, r: Resource, ns: str, name: str) -> tuple[str, str, str]:
        return (r.plural, ns, name)

    async def get(self, r: Resource, ns: str, name: str) -> dict[str, Any] | None:
        self.calls[("get", r.plural)] += 1
        obj = self.objects.get(self._key(r, ns, name))
        return copy.deepcopy(obj) if obj else None

    async def list(self, r: Resource, ns: str, *, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        self.calls[("list", r.plural)] += 1
        out = []
        for (plural, ons, _), obj in self.objects.items():
            lbl = obj["metadata"].get("labels") or {}
            if plural == r.plural and ons == ns and all(lbl.get(k) == v for k, v in (labels or {}).items()):
                out.append(copy.deepcopy(obj))
        return out

    async def create(self, r: Resource, ns: str, body: dict[str, Any]) -> bool:
        self.calls[("create", r.plural)] += 1
        key = self._key(r, ns, body["metadata"].get("name") or uuid.uuid4().hex)
        if key in self.objects:
            return False
        obj = copy.deepcopy(body)
        obj["metadata"]["uid"] = uuid.uuid4().hex
        self.objects[key] = obj
        return True

    async def patch(self, r: Resource, ns: str, name: str, patch: dict[str, Any], *,
                    status: bool = False, resource_version: str | None = None) -> dict[str, Any] | None:
        self.calls[("patch/status" if status else "patch", r.plural)] += 1
        obj = self.objects.get(self._key(r, ns, name))
        if obj is None:
            return None
        if resource_version and obj["metadata"].get("resourceVersion", "1") != resource_version:
            raise Conflict(409, f"{r.plural}/{name}: resourceVersion {resource_version} is not the object's")
        _merge(obj, patch)
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"].get("resourceVersion", "1")) + 1)
        return obj

    async def delete(self, r: Resource, ns: str, name: str) -> bool:
        self.calls[("delete", r.plural)] += 1
        obj = self.objects.pop(self._key(r, ns, name), None)
        if obj is None:
            return False
        self._collect(obj["metadata"]["uid"])
        return True

    def _collect(self, uid: str) -> None:  # the garbage collector: cascade to owned objects
        for key, obj in list(self.objects.items()):
            if any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or []):
                self.objects.pop(key, None)
                self._collect(obj["metadata"]["uid"])


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)


class JobController:
    """Completes ``parallelism`` shards per ``shard_seconds`` per Job; fails some indexes."""

    def __init__(self, kube: MemoryKube, *, shard_seconds: float, failure_rate: float, seed: int = 1) -> None:
        self.kube, self.shard_seconds, self.failure_rate = kube, shard_seconds, failure_rate
        self.credit: dict[str, float] = collections.defaultdict(float)
        self.rng = random.Random(seed)

    def advance(self, dt: float) -> int:
        finished_shards = 0
        for (plural, _, name), job in self.kube.objects.items():
            if plural != "jobs" or (job.get("status") or {}).get("conditions") or job["spec"].get("suspend"):
                continue  # finished, or waiting for Kueue's admission
            spec, st = job["spec"], job.setdefault("status", {})
            done = ranges.parse(st.get("completedIndexes"))
            failed = ranges.parse(st.get("failedIndexes"))
            todo = ranges.subtract([(0, spec["completions"] - 1)], ranges.union(done, failed))
            self.credit[name] += spec["parallelism"] * dt / self.shard_seconds
            n = int(self.credit[name])
            self.credit[name] -= n
            for a, b in todo:
                for i in range(a, b + 1):
                    if n == 0:
                        break
                    n -= 1
                    if self.rng.random() < self.failure_rate:
                        failed = ranges.union(failed, [(i, i)])
                    else:
                        done = ranges.union(done, [(i, i)])
                        finished_shards += 1
            st["completedIndexes"] = ranges.format_spans(done)
            st["failedIndexes"] = ranges.format_spans(failed)
            st["active"] = spec["parallelism"]
            if ranges.count(done) + ranges.count(failed) == spec["completions"]:
                kind = "Failed" if failed else "Complete"
                st["conditions"] = [{"type": kind, "status": "True",
                                     "reason": "FailedIndexes" if failed else "CompletionsReached"}]
                st["active"] = 0
        return finished_shards


class Kueue:
    """Admits suspended queue-labelled Jobs, oldest first, within a quota of pods (partial admission)."""

    def __init__(self, kube: MemoryKube, *, quota: int) -> None:
        self.kube, self.quota = kube, quota
        self.calls = 0  # Kueue's own writes (not the operator's requests)

    def admit(self) -> None:
        jobs = [j for (p, _, _), j in self.kube.objects.items() if p == "jobs" and kueue.is_managed(job_facts(j))
                and not (j.get("status") or {}).get("conditions")]
        used = sum(int(j["spec"]["parallelism"]) for j in jobs if not j["spec"].get("suspend"))
        for j in jobs:
            free = self.quota - used
            if not j["spec"].get("suspend") or free <= 0:
                continue
            if kueue.ANNOTATION_MIN_PARALLELISM in (j["metadata"].get("annotations") or {}):
                j["spec"]["parallelism"] = min(int(j["spec"]["parallelism"]), free)
            elif int(j["spec"]["parallelism"]) > free:
                continue
            j["spec"]["suspend"] = False
            used += int(j["spec"]["parallelism"])
            self.calls += 1


@dataclass
class SimResult:
    shards_completed: int
    requests: int
    max_dataset_status: int
    max_batch_status: int
    max_live_batches: int
    max_live_jobs: int
    sim_hours: float
    phase: str
    finished: bool

    @property
    def requests_per_shard(self) -> float:
        return self.requests / max(1, self.shards_completed)


async def simulate(spec_raw: dict[str, Any], *, settings: Settings, shard_seconds: float,
                   failure_rate: float, max_shards: int | None = None, kueue_quota: int | None = None) -> SimResult:
    kube = MemoryKube()
    ctl = JobController(kube, shard_seconds=shard_seconds, failure_rate=failure_rate)
    queue = Kueue(kube, quota=kueue_quota) if kueue_quota is not None else None
    body = {"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
            "metadata": {"name": "ds", "namespace": "ns", "uid": "ds-uid", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec_raw}
    kube.objects[("synthdatasets", "ns", "ds")] = body
    dt = settings.operator.batch_interval
    t, next_ds = 0.0, 0.0
    max_ds = max_rb = live_b = live_j = 0
    while True:
        now = T0 + timedelta(seconds=t)
        if t >= next_ds:
            await reconcile_dataset(kube, copy.deepcopy(kube.objects[("synthdatasets", "ns", "ds")]),
                                    settings=settings, now=now)
            next_ds += settings.operator.dataset_interval
        ds = kube.objects[("synthdatasets", "ns", "ds")]
        batches = [o for (p, _, _), o in list(kube.objects.items()) if p == "renderbatches"]
        for b in batches:
            await reconcile_batch(kube, copy.deepcopy(b), ds, settings=settings, now=now)
            max_rb = max(max_rb, len(json.dumps(b.get("status") or {})))
        max_ds = max(max_ds, len(json.dumps(ds.get("status") or {})))
        live_b = max(live_b, len(batches))
        live_j = max(live_j, sum(1 for (p, _, _) in kube.objects if p == "jobs"))
        st = ds.get("status") or {}
        done = (st.get("shards") or {}).get("completed", 0)
        if st.get("phase") in ("Succeeded", "Degraded") and not batches and st.get("nextShard") == \
                planning.shard_count(SynthDatasetSpec.model_validate(spec_raw)):
            finished = True
            break
        if max_shards is not None and done >= max_shards:
            finished = False
            break
        if queue is not None:
            queue.admit()
        ctl.advance(dt)
        t += dt
    return SimResult(done, sum(kube.calls.values()), max_ds, max_rb, live_b, live_j, t / 3600,
                     str(st.get("phase")), finished)


def planning_time(spec: SynthDatasetSpec, settings: Settings, reps: int = 20) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        decide_dataset(name="ds", spec=spec, status=SynthDatasetStatus(), batches=[], index_job=None, generation=1,
                       now=T0, settings=settings)
    return (time.perf_counter() - t) / reps


def worst_case_status(spec: SynthDatasetSpec, settings: Settings) -> int:
    """Dataset status with every other shard failed (the most fragmented ranges possible)."""
    total = planning.shard_count(spec)
    failed = [(i, i) for i in range(0, total, 2)]
    status = {"failedShards": ranges.bounded_text(failed, max_spans=settings.operator.max_status_ranges),
              "folded": {"batches": ranges.format_spans([(i, i) for i in range(0, planning.batch_count(spec), 2)])
                         [:0]}}
    d = decide_dataset(name="ds", spec=spec, status=SynthDatasetStatus.model_validate(status), batches=[],
                       index_job=None, generation=1, now=T0, settings=settings)
    return len(json.dumps(d.status.wire()))


def base(samples: int, shard: int, workers: int, **extra: Any) -> dict[str, Any]:
    return {"samples": samples, "shardSize": shard, "workers": {"max": workers},
            "output": {"uri": "s3://bucket/data"}, "image": "renderer:1", **extra}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shard-seconds", type=float, default=300.0, help="Render time of one shard by one pod.")
    ap.add_argument("--failure-rate", type=float, default=0.01, help="Fraction of shard renders that fail.")
    ap.add_argument("--quick", action="store_true", help="Smaller partial runs.")
    args = ap.parse_args()
    settings = Settings()  # production intervals: batch 10 s, dataset 15 s
    print(f"# operator core benchmark (simulated clock; shard render {args.shard_seconds:.0f} s/pod; "
          f"failure rate {args.failure_rate:.1%}; batch tick {settings.operator.batch_interval:.0f} s, "
          f"dataset tick {settings.operator.dataset_interval:.0f} s)")
    cases = [
        ("1e4", base(10_000, 100, 8), None),
        ("1e6", base(1_000_000, 1000, 64), None),
        ("5e8", base(500_000_000, 1000, 2000), 3_000 if args.quick else 20_000),
    ]
    print(f"{'samples':>8} {'shards':>8} {'per batch':>9} {'plan ms':>8} {'live RB':>7} {'live Jobs':>9} "
          f"{'max sds B':>9} {'max rb B':>8} {'worst sds B':>11} {'req/shard':>9} {'sim h':>7} run")
    for label, raw, limit in cases:
        spec = SynthDatasetSpec.model_validate(raw)
        plan_ms = planning_time(spec, settings) * 1000
        t = time.perf_counter()
        r = await simulate(raw, settings=settings, shard_seconds=args.shard_seconds,
                           failure_rate=args.failure_rate, max_shards=limit)
        wall = time.perf_counter() - t
        run = "complete" if r.finished else f"partial: first {r.shards_completed} shards"
        print(f"{label:>8} {planning.shard_count(spec):>8} {planning.shards_per_batch(spec):>9} {plan_ms:>8.2f} "
              f"{r.max_live_batches:>7} {r.max_live_jobs:>9} {r.max_dataset_status:>9} {r.max_batch_status:>8} "
              f"{worst_case_status(spec, settings):>11} {r.requests_per_shard:>9.2f} {r.sim_hours:>7.1f} "
              f"{run} ({wall:.1f} s wall, phase {r.phase})")
    print()
    print("# API requests per completed shard as shards per batch grow (1e5 samples, 100/shard, 32 workers)")
    print(f"{'per batch':>9} {'live RB':>7} {'requests':>9} {'shards':>7} {'req/shard':>9}")
    for per in (1, 4, 16, 64, 256):
        raw = base(100_000, 100, 32, shardsPerBatch=per)
        r = await simulate(raw, settings=settings, shard_seconds=args.shard_seconds, failure_rate=0.0)
        print(f"{per:>9} {r.max_live_batches:>7} {r.requests:>9} {r.shards_completed:>7} {r.requests_per_shard:>9.2f}")
    print()
    print("# issue #17: API requests per completed shard under Kueue vs without "
          "(1e5 samples, 100/shard, 32 workers, 16 shards per batch)")
    print(f"{'queue':>22} {'live RB':>7} {'requests':>9} {'shards':>7} {'req/shard':>9} {'sim h':>7}")
    for label, quota in (("none", None), ("Kueue, quota 32 pods", 32), ("Kueue, quota 8 pods", 8)):
        raw = base(100_000, 100, 32, shardsPerBatch=16, **({"queue": "team-a"} if quota else {}))
        r = await simulate(raw, settings=settings, shard_seconds=args.shard_seconds, failure_rate=0.0,
                           kueue_quota=quota)
        print(f"{label:>22} {r.max_live_batches:>7} {r.requests:>9} {r.shards_completed:>7} "
              f"{r.requests_per_shard:>9.2f} {r.sim_hours:>7.1f}")


if __name__ == "__main__":
    asyncio.run(main())
