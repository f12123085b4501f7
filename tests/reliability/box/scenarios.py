"""The fault scenarios: each renders a tiny dataset in a :class:`~box.cluster.Box` while injecting one
kind of fault, then checks the end state the same way:

* ``synthctl validate`` on the bucket reports no problem except the expected ones (the shards that
  were meant to fail, and ``missing-dataset-json`` where shards failed: such a dataset is never
  indexed);
* every global sample index of the committed shards appears exactly once, none is missing (a sample
  that the quality gate quarantined counts where it is: in ``quarantine/``, listed by its shard's
  manifest);
* the SynthDataset status agrees with the bucket: committed samples and shards, failed shards;
* the bucket is consistent (:attr:`~box.cluster.Truth.problems` is empty: every tar is the one its
  manifest committed) and no shard was committed twice (the S3 proxy counts accepted PUTs of each
  ``manifests/*.json``: a second one means a shard was rendered twice or overwritten);
* ``status.preemptions`` and ``status.retries`` equal what the faults imply (each scenario states
  the expected value or bound in its :class:`Expect`).

Used by ``test_scenarios.py`` (pytest) and by ``scripts/reliability_report.py`` (the table).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from box.apiserver import EVENTS, PODS, ApiFaults
from box.cluster import NAMESPACE, Box, BoxOptions, tiny_spec
from box.s3 import S3Faults

KNOWN_GAPS: set[str] = set()
"""validate problems that come from a known operator gap, not from the fault (see the report)."""
TIMEOUT = 240.0
"""Longest a scenario may take before it counts as hung."""

Driver = Callable[[Box, str], Coroutine[Any, Any, dict[str, int]]]

# Fault counts that the expected status counters are derived from (keys of ScenarioResult.faults).
PREEMPTED = "preempted mid-shard (SIGTERM + DisruptionTarget)"
CRASHED = "killed (SIGKILL, exit 137)"
DENIED = "s3.denied"
PODS_LOST = "pods lost with the node"
ZOMBIES = "zombie pods (partitioned, replaced, then let go)"


@dataclass(frozen=True)
class Expect:
    """What ``status.preemptions`` and ``status.retries`` must be, given the injected fault counts.

    Each is a function of the fault counts to an inclusive ``(low, high)`` bound; the default is
    exactly 0 (no fault that the operator should count).
    """

    preemptions: Callable[[dict[str, int]], tuple[int, int]] = lambda f: (0, 0)
    retries: Callable[[dict[str, int]], tuple[int, int]] = lambda f: (0, 0)


def _bound(b: tuple[int, int]) -> str:
    return str(b[0]) if b[0] == b[1] else f"{b[0]}-{b[1]}"


@dataclass
class ScenarioResult:
    name: str
    faults: dict[str, int] = field(default_factory=dict)
    shards: int = 0
    samples: int = 0
    phase: str = ""
    committed_samples: int = 0
    """Samples in the bucket: in committed shards, or quarantined by the quality gate."""
    quarantined: int = 0
    expected_failed_shards: str = ""
    reported_failed_shards: str = ""
    validate_ok: bool = False
    validate_problems: list[str] = field(default_factory=list)
    duplicates: int = 0
    missing: int = 0
    unexpected: int = 0
    status_matches: bool = False
    status_detail: str = ""
    preemptions_status: int = 0
    retries_status: int = 0
    preemptions_expected: str = ""
    retries_expected: str = ""
    counters_match: bool = False
    """status.preemptions and status.retries within the bounds the faults imply."""
    counters_detail: str = ""
    truth_problems: list[str] = field(default_factory=list)
    committed_shards: int = 0
    commits: int = 0
    """Accepted manifest PUTs seen by the S3 proxy (one per committed shard when all is well)."""
    double_commits: dict[str, int] = field(default_factory=dict)
    """Manifests committed more than once (path -> accepted PUTs)."""
    operator_alive: bool = True
    started: str = ""
    """When the run started (UTC, ISO 8601): the report stamps its table with this, not with today."""
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return (not self.error and self.validate_ok and self.duplicates == 0 and self.missing == 0
                and self.unexpected == 0 and self.status_matches and self.operator_alive
                and not self.truth_problems and not self.double_commits and self.counters_match)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _ranges(values: set[int]) -> str:
    from box.jobcontroller import format_ranges

    return format_ranges(values)


def finished(box: Box, name: str) -> bool:
    """The dataset reached an end: Succeeded/Failed, or Degraded with its Finished event posted."""
    phase = box.status(name).get("phase")
    if phase in ("Succeeded", "Failed"):
        return True
    return phase == "Degraded" and any(
        e.get("reason") == "Finished" and e.get("involvedObject", {}).get("name") == name
        for e in box.api.select(EVENTS, NAMESPACE))


async def final_checks(box: Box, name: str, spec: dict[str, Any], result: ScenarioResult,
                       expected_failed: set[int], expect: Expect | None = None) -> None:
    samples, size = int(spec["samples"]), int(spec["shardSize"])
    shards = -(-samples // size)
    result.shards, result.samples = shards, samples
    st = box.status(name)
    result.phase = str(st.get("phase"))
    result.preemptions_status = int(st.get("preemptions") or 0)
    result.retries_status = int(st.get("retries") or 0)
    result.expected_failed_shards = _ranges(expected_failed)
    result.reported_failed_shards = str(st.get("failedShards") or "")
    truth = await asyncio.to_thread(box.truth, name)
    result.truth_problems = list(truth.problems)
    if box.proxy is not None:
        result.commits = sum(box.proxy.commits.values())
        result.double_commits = box.proxy.double_commits()
    expect = expect or Expect()
    counters = {"preemptions": (result.preemptions_status, expect.preemptions(result.faults)),
                "retries": (result.retries_status, expect.retries(result.faults))}
    result.preemptions_expected = _bound(counters["preemptions"][1])
    result.retries_expected = _bound(counters["retries"][1])
    off = [f"status.{k} {got}, faults imply {_bound(b)}" for k, (got, b) in counters.items()
           if not b[0] <= got <= b[1]]
    result.counters_match = not off
    result.counters_detail = "; ".join(off) or "counters == faults"
    expected = {i for s in range(shards) if s not in expected_failed
                for i in range(s * size, min((s + 1) * size, samples))}
    result.committed_samples = len(truth.indexes)
    result.quarantined = truth.quarantined
    result.committed_shards = len(truth.committed_shards)
    result.duplicates = truth.duplicates
    result.missing = truth.missing(expected)
    result.unexpected = len(set(truth.indexes) - expected)
    counts = st.get("samples") or {}
    got = {  # kept + quarantined: the status counts quarantined samples apart when the pods report them
        "samples.completed": int(counts.get("completed") or 0) + int(counts.get("quarantined") or 0),
        "shards.completed": int((st.get("shards") or {}).get("completed") or 0),
        "shards.failed": int((st.get("shards") or {}).get("failed") or 0),
        "failedShards": result.reported_failed_shards,
    }
    want = {  # a quarantined sample was rendered and is accounted for, outside the training shard
        "samples.completed": truth.manifest_samples + truth.quarantined,
        "shards.completed": len(truth.committed_shards),
        "shards.failed": len(expected_failed),
        "failedShards": result.expected_failed_shards,
    }
    diffs = [f"{k}: status {got[k]!r}, bucket {want[k]!r}" for k in got if got[k] != want[k]]
    result.status_matches = not diffs
    result.status_detail = "; ".join(diffs) or "status == bucket"
    manifest = box.workdir / f"{name}.yaml"
    manifest.write_text(json.dumps({"apiVersion": "parallelsynth.io/v1alpha1", "kind": "SynthDataset",
                                    "metadata": {"name": name}, "spec": spec}))
    code, problems = await box.validate_report(name, manifest=manifest)
    allowed = {f"shards/{s:08d}.tar" for s in expected_failed} | {f"manifests/{s:08d}.json" for s in expected_failed}
    left = [f"[{p['code']}] {p['where']}: {p['message']}" for p in problems
            if p["code"] not in KNOWN_GAPS
            # a dataset with failed shards is never indexed: no dataset.json is the truth there
            and not (p["code"] == "missing-dataset-json" and expected_failed)
            and not (p["code"] in ("missing-shard", "missing-manifest") and p["where"] in allowed)]
    result.validate_problems = left
    result.validate_ok = not left and (code == 0 or bool(problems))
    result.operator_alive = box.operator_alive()


async def run_scenario(name: str, workdir: Path, *, options: BoxOptions | None = None,
                       spec_kwargs: dict[str, Any] | None = None, driver: Driver | None = None,
                       expected_failed: set[int] | None = None, timeout: float = TIMEOUT,
                       expect: Expect | None = None, driver_timeout: float = 15.0) -> ScenarioResult:
    """Render one tiny dataset under ``driver``'s faults and check the end state."""
    result = ScenarioResult(name=name, started=datetime.now(UTC).isoformat(timespec="seconds"))
    t0 = time.monotonic()
    async with Box(workdir, options) as box:
        spec = tiny_spec(endpoint=box.endpoint, **(spec_kwargs or {}))
        try:
            await box.start_operator()
            box.apply_dataset(name, spec)
            faults: dict[str, int] = {}
            task = asyncio.create_task(driver(box, name)) if driver else None
            try:
                await box.wait_for(lambda: finished(box, name), timeout=timeout, what=f"{name} to finish")
            finally:
                if task is not None:
                    try:  # drivers stop on their own once the dataset is finished
                        faults = await asyncio.wait_for(task, driver_timeout)
                    except (TimeoutError, asyncio.CancelledError):
                        faults = {"driver did not stop": 1}
            faults.update({f"api.{k}": v for k, v in box.api.injected.items()})
            if box.proxy is not None:
                faults.update({f"s3.{k}": v for k, v in box.proxy.injected.items()})
            result.faults = {k: v for k, v in sorted(faults.items()) if v}
            await final_checks(box, name, spec, result, expected_failed or set(), expect)
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:2000]
            (workdir / "error.txt").write_text(result.error)
        finally:
            dump_world(box, workdir / "world.json")
    result.seconds = round(time.monotonic() - t0, 1)
    return result


def dump_world(box: Box, path: Path) -> None:
    """Everything the API server holds at the end, plus pod exits: for post-mortems."""
    world: dict[str, Any] = {"/".join(k): box.api.select(k) for k in box.api.kinds if k[2] not in ("secrets",)}
    world["exits"] = box.kubelets.exits
    world["audit_tail"] = box.api.audit[-200:]
    path.write_text(json.dumps(world, indent=1, default=str))


# --------------------------------------------------------------------------- drivers


def _busy(box: Box, min_age: float) -> list[Any]:
    now = time.monotonic()
    return [r for r in box.kubelets.running_pods() if now - r.since >= min_age]


def _rendering(box: Box, r: Any) -> bool:
    """Has the pod committed a sample to its shard but not the shard (per its own log)?"""
    log = box.workdir / "logs" / f"{r.namespace}_{r.pod}.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return '"event": "sample"' in text and '"shard committed"' not in text


def preempt_driver(limit: int) -> Driver:
    async def drive(box: Box, name: str) -> dict[str, int]:
        def act() -> bool:
            pods = [r for r in _busy(box, 1.0) if _rendering(box, r)]
            if not pods:
                return False
            return box.kubelets.preempt(box.rng.choice(pods))
        n = await box.chaos(lambda: finished(box, name), act, every=(0.3, 1.0), limit=limit, timeout=TIMEOUT)
        return {PREEMPTED: n}
    return drive


def _render_pod(box: Box, r: Any) -> bool:
    """A pod of a render Job (not the index Job): only those count in the batches' status."""
    pod = box.api.read(PODS, r.namespace, r.pod)
    return pod is not None and "parallelsynth.io/attempt" in (pod["metadata"].get("labels") or {})


def crash_driver(limit: int) -> Driver:
    async def drive(box: Box, name: str) -> dict[str, int]:
        def act() -> bool:
            pods = [r for r in _busy(box, 1.5) if _render_pod(box, r)]
            return bool(pods) and box.kubelets.kill(box.rng.choice(pods))
        await box.chaos(lambda: finished(box, name), act, every=(1.5, 3.0), limit=limit, timeout=TIMEOUT)
        await box.wait_for(lambda: all(p in dict(box.kubelets.exits) for p in box.kubelets.killed), timeout=30,
                           what="the killed containers to exit")
        # A crash is a container that the kill ended (exit 137), not a signal sent to a pod on its way out.
        return {CRASHED: len(box.kubelets.crashed()),
                "kill signals that ended no container": len(box.kubelets.killed) - len(box.kubelets.crashed())}
    return drive


def operator_restart_driver(times: int) -> Driver:
    async def drive(box: Box, name: str) -> dict[str, int]:
        kills = 0
        for k in range(times):
            target = (k + 1) * 2  # after 2, then 4 committed shards

            def reached(target: int = target) -> bool:
                return _shards_done(box, name) >= target or finished(box, name)

            try:
                await box.wait_for(reached,
                                   timeout=TIMEOUT, what="progress before killing the operator")
            except TimeoutError:
                break
            if finished(box, name):
                break
            await box.stop_operator(signal.SIGKILL)
            kills += 1
            await asyncio.sleep(1.0)
            await box.start_operator()
        return {"operator SIGKILL + restart": kills}
    return drive


def _shards_done(box: Box, name: str) -> int:
    return int((box.status(name).get("shards") or {}).get("completed") or 0)


def node_loss_driver() -> Driver:
    async def drive(box: Box, name: str) -> dict[str, int]:
        def crowded() -> str | None:
            per_node: dict[str, int] = {}
            for r in _busy(box, 1.5):
                per_node[r.node] = per_node.get(r.node, 0) + 1
            full = [n for n, c in per_node.items() if c >= 2]
            return full[0] if full else None
        await box.wait_for(lambda: crowded() is not None or finished(box, name), timeout=TIMEOUT,
                           what="a node with two busy pods")
        node = crowded()
        if node is None:
            return {}
        lost = box.kubelets.lose_node(node)
        return {"node lost": 1, PODS_LOST: len(lost)}
    return drive


def partition_driver(hold: float = 60.0) -> Driver:
    """Cut a node with a pod mid-shard off the API server but not from S3; hold its containers (SIGSTOP)
    until the dataset has finished with their replacements, then let them go on: the worst ordering,
    a zombie that uploads its shard after the shard was committed (and indexed) by another pod."""
    async def drive(box: Box, name: str) -> dict[str, int]:
        def target() -> str | None:
            nodes = [r.node for r in _busy(box, 1.0) if _rendering(box, r) and _render_pod(box, r)]
            return nodes[0] if nodes else None
        await box.wait_for(lambda: target() is not None or finished(box, name), timeout=TIMEOUT,
                           what="a pod rendering a shard")
        node = target()
        if node is None:
            return {}
        zombies = box.kubelets.partition_node(node)
        for z in zombies:
            box.kubelets.freeze(z)
        await box.wait_for(lambda: finished(box, name), timeout=TIMEOUT, what=f"{name} to finish without the zombies")
        for z in zombies:
            box.kubelets.thaw(z)
        codes = await box.kubelets.reap(zombies, hold)
        return {"node partitioned": 1, ZOMBIES: len(zombies),
                "zombies that ran to their end": sum(c is not None for c in codes)}
    return drive


# --------------------------------------------------------------------------- the catalogue

DENIED_SHARD = 4


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    run: Callable[[Path], Awaitable[ScenarioResult]]
    proves: tuple[str, ...] = ()
    """Fault counts that must be non-zero for the run to show anything (the fault really happened)."""


async def baseline(workdir: Path) -> ScenarioResult:
    return await run_scenario("baseline", workdir, spec_kwargs={"samples": 12, "shard_size": 3})


SLOWER_RENDER = {"engine": "cycles", "device": "cpu", "resolutions": [{"width": 128, "height": 128}],
                 "samples": {"min": 16, "max": 32}, "denoise": False, "passes": ["rgb", "depth", "segmentation"]}
"""Heavier samples (about 0.5 s each on a shared core) so that SIGTERM lands mid-shard, after some samples."""


async def spot_preemption(workdir: Path) -> ScenarioResult:
    # Each preempted pod is one preemption; DisruptionTarget pods are ignored by podFailurePolicy: no retry.
    return await run_scenario("spot-preemption", workdir, driver=preempt_driver(limit=6),
                              spec_kwargs={"samples": 24, "shard_size": 6, "render": SLOWER_RENDER},
                              expect=Expect(preemptions=lambda f: (f.get(PREEMPTED, 0),) * 2))


CRASH_BATCHES, CRASH_ATTEMPTS = 2, 2
"""18 samples in shards of 3, 3 shards per batch: 2 batches; ``retry.attempts`` 2."""


def _crash_retries(f: dict[str, int]) -> tuple[int, int]:
    """Every crash and every refused upload is one failed pod (each pod's upload is refused once: 403 is
    not retried); each batch may add its second Job attempt (shard 4's batch always does)."""
    failed_pods = f.get(CRASHED, 0) + f.get(DENIED, 0)
    return failed_pods + 1, failed_pods + CRASH_BATCHES * (CRASH_ATTEMPTS - 1)


async def crashes_and_errors(workdir: Path) -> ScenarioResult:
    opts = BoxOptions(s3_faults=S3Faults(deny_puts=(f"shards/{DENIED_SHARD:08d}.tar",)))
    return await run_scenario(
        "crashes-and-errors", workdir, options=opts,
        spec_kwargs={"samples": 18, "shard_size": 3, "per_shard": 1, "attempts": CRASH_ATTEMPTS,
                     "shards_per_batch": 3},
        driver=crash_driver(limit=3), expected_failed={DENIED_SHARD}, expect=Expect(retries=_crash_retries))


async def operator_restarts(workdir: Path) -> ScenarioResult:
    return await run_scenario("operator-restarts", workdir, spec_kwargs={"samples": 18, "shard_size": 3},
                              driver=operator_restart_driver(times=2))


async def api_errors(workdir: Path) -> ScenarioResult:
    # Every preconditioned write (kopf's finalizer JSON-patches; the operator's own status merge-patches
    # carry none) meets a concurrent writer, up to 4: a real 409/422 in every run.
    faults = ApiFaults(conflict_rate=1.0, throttle_rate=0.03, error_rate=0.03, watch_drop_rate=0.3,
                       max_each=4, seed=3)
    return await run_scenario("api-errors", workdir, options=BoxOptions(api_faults=faults),
                              spec_kwargs={"samples": 12, "shard_size": 3})


async def s3_faults(workdir: Path) -> ScenarioResult:
    faults = S3Faults(slowdown_rate=0.08, reset_rate=0.04, partial_upload_rate=0.15, lost_response_rate=0.05,
                      max_each=6, seed=5)
    return await run_scenario("s3-faults", workdir, options=BoxOptions(s3_faults=faults),
                              spec_kwargs={"samples": 12, "shard_size": 3})


async def node_loss(workdir: Path) -> ScenarioResult:
    # The lost pods get DisruptionTarget (DeletionByTaintManager): each is a preemption, none a retry.
    return await run_scenario("node-loss", workdir, options=BoxOptions(nodes=2, pods_per_node=2),
                              spec_kwargs={"samples": 18, "shard_size": 3, "workers_max": 3,
                                           "shards_per_batch": 3},
                              driver=node_loss_driver(), expect=Expect(preemptions=lambda f: (f.get(PODS_LOST, 0),) * 2))


async def zombie_writer(workdir: Path) -> ScenarioResult:
    # As node-loss for the API (each partitioned pod is a preemption, none a retry); the zombies must
    # neither commit their shard a second time nor leave a tar that is not the committed one.
    return await run_scenario("zombie-writer", workdir, options=BoxOptions(nodes=2, pods_per_node=2),
                              spec_kwargs={"samples": 12, "shard_size": 3, "workers_max": 3, "shards_per_batch": 4},
                              driver=partition_driver(hold=60.0), driver_timeout=90.0,
                              expect=Expect(preemptions=lambda f: (f.get(ZOMBIES, 0),) * 2))


SCENARIOS: list[Scenario] = [
    Scenario("baseline", "no faults (reference)", baseline),
    Scenario("spot-preemption", "SIGTERM to random pods mid-shard, DisruptionTarget set", spot_preemption,
             proves=(PREEMPTED,)),
    Scenario("crashes-and-errors", f"SIGKILL to random pods; shard {DENIED_SHARD}'s upload always refused",
             crashes_and_errors, proves=(CRASHED, DENIED)),
    Scenario("operator-restarts", "operator SIGKILLed and restarted mid-run, twice", operator_restarts,
             proves=("operator SIGKILL + restart",)),
    Scenario("api-errors", "409, 429 + Retry-After, 500 and cut watch streams from the API", api_errors,
             proves=("api.conflict",)),
    Scenario("s3-faults", "503 SlowDown, connection resets, partial uploads, lost responses", s3_faults),
    Scenario("node-loss", "a node and all its pods vanish at once", node_loss, proves=(PODS_LOST,)),
    Scenario("zombie-writer", "a node is partitioned from the API mid-shard; its pods are replaced, then upload",
             zombie_writer, proves=(ZOMBIES, "zombies that ran to their end")),
]
