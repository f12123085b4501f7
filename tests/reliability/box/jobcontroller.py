"""A simulated batch/v1 Job controller: Indexed Jobs as kube-controller-manager runs them (1.31+).

Honoured: ``completionMode: Indexed``, ``completions``, ``parallelism`` (scaled up and down in
place), ``backoffLimitPerIndex`` with ``failedIndexes`` and ``maxFailedIndexes``, ``backoffLimit``,
``podFailurePolicy`` (``Ignore``, ``FailJob``, ``FailIndex``, ``Count``; ``onExitCodes`` with
``In``/``NotIn`` and ``containerName``; ``onPodConditions``), ``podReplacementPolicy``
(``Failed``: no replacement until the old pod is terminal; ``TerminatingOrFailed``), ``suspend``,
``ttlSecondsAfterFinished``. A pod deleted while running counts as failed unless a rule ignores
it (as the real controller does). Status carries ``active``, ``ready``, ``terminating``,
``succeeded``, ``failed``, ``completedIndexes``, ``failedIndexes``, ``startTime``,
``completionTime`` and the conditions ``SuccessCriteriaMet``/``Complete`` or
``FailureTarget``/``Failed`` (reasons ``CompletionsReached``, ``FailedIndexes``,
``MaxFailedIndexesExceeded``, ``PodFailurePolicy``, ``BackoffLimitExceeded``). Pods get the
labels, annotation, owner reference and ``JOB_COMPLETION_INDEX`` variable the real controller adds.

Pods carry the ``batch.kubernetes.io/job-tracking`` finalizer until the controller has counted
them, so a pod that ends and is deleted at once is never missed (as in the real controller).
Simplified: no ``uncountedTerminatedPods`` in status; the per-index retry backoff is scaled down (``backoff_base`` seconds,
doubling, capped) so scenarios take seconds; ``activeDeadlineSeconds``, ``successPolicy``,
``managedBy``, pod-level ``restartPolicy: OnFailure`` and non-Indexed Jobs are not simulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from box.apiserver import JOBS, PODS, ApiError, ApiServer, now_iso

log = logging.getLogger("box.jobs")

INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
TERMINAL = ("Succeeded", "Failed")
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"


def format_ranges(values: set[int]) -> str:
    """Kubernetes' compact index format: ``1,3-5,7``."""
    out, items = [], sorted(values)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def parse_ranges(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if part.strip():
            a, _, b = part.partition("-")
            out.update(range(int(a), int(b or a) + 1))
    return out


def pod_index(pod: dict[str, Any]) -> int:
    return int((pod["metadata"].get("annotations") or {})[INDEX_LABEL])


def _has_condition(pod: dict[str, Any], ctype: str, status: str = "True") -> bool:
    return any(c.get("type") == ctype and c.get("status") == status
               for c in (pod.get("status") or {}).get("conditions") or [])


def match_rule(rule: dict[str, Any], pod: dict[str, Any]) -> bool:
    """Does a podFailurePolicy rule match a failed pod?"""
    if "onPodConditions" in rule:
        return any(_has_condition(pod, c["type"], c.get("status", "True")) for c in rule["onPodConditions"])
    codes = rule.get("onExitCodes")
    if not codes:
        return False
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if codes.get("containerName") and cs.get("name") != codes["containerName"]:
            continue
        term = (cs.get("state") or {}).get("terminated")
        if not term:
            continue
        code = int(term.get("exitCode", 0))
        if code == 0:
            continue
        inside = code in codes.get("values", [])
        if (codes.get("operator") == "In") == inside:
            return True
    return False


def failure_action(job_spec: dict[str, Any], pod: dict[str, Any]) -> tuple[str, str]:
    """The podFailurePolicy action for a failed pod (``Count`` when no rule matches), and why."""
    for i, rule in enumerate((job_spec.get("podFailurePolicy") or {}).get("rules") or []):
        if match_rule(rule, pod):
            return rule["action"], f"rule at index {i}"
    return "Count", "no rule"


@dataclass
class _JobMemory:
    accounted: set[str] = field(default_factory=set)
    index_failures: dict[int, int] = field(default_factory=dict)
    not_before: dict[int, float] = field(default_factory=dict)
    finished_at: float | None = None


@dataclass
class JobController:
    """Reconciles every Job in the API server whenever anything changes."""

    api: ApiServer
    backoff_base: float = 0.3
    """First per-index retry delay in seconds (the real controller starts at 10 s)."""
    backoff_max: float = 3.0
    memory: dict[str, _JobMemory] = field(default_factory=dict)
    pods_created: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for job in self.api.objects_of(JOBS):
                try:
                    self.reconcile(job)
                except ApiError as e:  # a concurrent change; the next pass sees the fresh object
                    log.debug("job %s: %s", job["metadata"]["name"], e.message)
            self._release_orphans()
            await self.api.changed(0.2)

    def _release(self, pod: dict[str, Any]) -> None:
        """Drop the tracking finalizer of a counted (or orphaned) terminal pod."""
        fins = pod["metadata"].get("finalizers") or []
        if TRACKING_FINALIZER in fins:
            with contextlib.suppress(ApiError):
                self.api.patch_obj(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                               {"metadata": {"finalizers": [f for f in fins if f != TRACKING_FINALIZER] or None}})

    def _release_orphans(self) -> None:
        jobs = {j["metadata"]["uid"] for j in self.api.objects_of(JOBS)}
        for pod in self.api.select(PODS):
            owners = {r.get("uid") for r in pod["metadata"].get("ownerReferences") or [] if r.get("kind") == "Job"}
            if TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or []) and not owners & jobs and (
                    (pod.get("status") or {}).get("phase") in TERMINAL or pod["metadata"].get("deletionTimestamp")):
                self._release(pod)

    # ------------------------------------------------------------------ one Job

    def _pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [p for p in self.api.select(PODS, job["metadata"]["namespace"])
                if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])]

    def reconcile(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job["spec"]
        ns, name = meta["namespace"], meta["name"]
        mem = self.memory.setdefault(meta["uid"], _JobMemory())
        st = copy.deepcopy(job.get("status") or {})
        conds: list[dict[str, Any]] = st.get("conditions") or []
        finished = any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds)
        pods = self._pods(job)
        if finished:
            self._terminate(pods)
            for pod in pods:
                if (pod.get("status") or {}).get("phase") in TERMINAL:
                    self._release(pod)
            self._ttl(job, mem)
            return
        completions = int(spec.get("completions") or 1)
        per_index = spec.get("backoffLimitPerIndex")
        completed = parse_ranges(st.get("completedIndexes"))
        failed_idx = parse_ranges(st.get("failedIndexes"))
        st.setdefault("startTime", now_iso())
        succeeded, failed = int(st.get("succeeded") or 0), int(st.get("failed") or 0)
        fail_job: str | None = None
        for pod in pods:
            phase = (pod.get("status") or {}).get("phase")
            uid = pod["metadata"]["uid"]
            if phase not in TERMINAL:
                continue
            if uid in mem.accounted:
                self._release(pod)
                continue
            mem.accounted.add(uid)
            idx = pod_index(pod)
            if phase == "Succeeded":
                if idx not in failed_idx:
                    completed.add(idx)
                succeeded += 1
                continue
            action, why = failure_action(spec, pod)
            if action == "Ignore":
                continue
            failed += 1
            if action == "FailJob":
                fail_job = fail_job or (
                    f"Container for pod {ns}/{pod['metadata']['name']} failed with exit code "
                    f"{_exit_code(pod)} matching FailJob {why}")
            elif action == "FailIndex" or per_index is None:
                if action == "FailIndex":
                    failed_idx.add(idx)
            else:
                n = mem.index_failures.get(idx, 0) + 1
                mem.index_failures[idx] = n
                if n > int(per_index):
                    failed_idx.add(idx)
                else:
                    delay = min(self.backoff_max, self.backoff_base * 2 ** (n - 1))
                    mem.not_before[idx] = time.monotonic() + delay
        completed -= failed_idx
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in TERMINAL]
        running = [p for p in live if not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in live if p["metadata"].get("deletionTimestamp")]
        reason = message = ""
        if fail_job:
            reason, message = "PodFailurePolicy", fail_job
        elif per_index is None and failed > int(spec.get("backoffLimit", 6)):
            reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        elif spec.get("maxFailedIndexes") is not None and len(failed_idx) > int(spec["maxFailedIndexes"]):
            reason, message = "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes"
        elif len(completed | failed_idx) >= completions and failed_idx:
            reason, message = "FailedIndexes", "Job has failed indexes"
        if not reason and len(completed) >= completions:
            conds = _set_condition(conds, "SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods")
            conds = _set_condition(conds, "Complete", "CompletionsReached", "Reached expected number of succeeded pods")
            st["completionTime"] = now_iso()
            mem.finished_at = time.monotonic()
        elif reason:
            conds = _set_condition(conds, "FailureTarget", reason, message)
            self._terminate(running)
            if not [p for p in self._pods(job) if (p.get("status") or {}).get("phase") not in TERMINAL]:
                conds = _set_condition(conds, "Failed", reason, message)
                mem.finished_at = time.monotonic()
        elif spec.get("suspend"):
            self._terminate(running)
            conds = _set_condition(conds, "Suspended", "JobSuspended", "Job suspended")
        else:
            conds = _set_condition(conds, "Suspended", "JobResumed", "Job resumed", status="False") \
                if any(c["type"] == "Suspended" for c in conds) else conds
            self._scale(job, mem, completed, failed_idx, running, terminating)
        live = [p for p in self._pods(job) if (p.get("status") or {}).get("phase") not in TERMINAL]
        st.update(
            active=len([p for p in live if not p["metadata"].get("deletionTimestamp")]),
            ready=len([p for p in live if _has_condition(p, "Ready")]),
            terminating=len([p for p in live if p["metadata"].get("deletionTimestamp")]),
            succeeded=succeeded, failed=failed, completedIndexes=format_ranges(completed),
            conditions=conds,
        )
        if per_index is not None:
            st["failedIndexes"] = format_ranges(failed_idx)
        if st != (job.get("status") or {}):
            job["status"] = st
            self.api.replace(JOBS, ns, name, job, subresource="status", check_rv=False)

    def _scale(self, job: dict[str, Any], mem: _JobMemory, completed: set[int], failed_idx: set[int],
               running: list[dict[str, Any]], terminating: list[dict[str, Any]]) -> None:
        spec = job["spec"]
        completions = int(spec.get("completions") or 1)
        replace_terminating = spec.get("podReplacementPolicy", "TerminatingOrFailed") == "TerminatingOrFailed"
        busy = {pod_index(p) for p in running}
        if not replace_terminating:
            busy |= {pod_index(p) for p in terminating}
        pending = [i for i in range(completions) if i not in completed and i not in failed_idx and i not in busy]
        want = min(int(spec.get("parallelism", 1)), completions - len(completed | failed_idx))
        if len(running) > want:
            for pod in sorted(running, key=pod_index, reverse=True)[: len(running) - want]:
                with contextlib.suppress(ApiError):
                    self.api.delete_obj(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
            return
        slots = want - len(running)
        if not replace_terminating:
            slots -= len(terminating)
        now = time.monotonic()
        for idx in [i for i in pending if mem.not_before.get(i, 0) <= now][: max(0, slots)]:
            self._create_pod(job, idx, mem.index_failures.get(idx, 0))

    def _create_pod(self, job: dict[str, Any], idx: int, failures: int) -> None:
        meta = job["metadata"]
        tmpl = copy.deepcopy(job["spec"]["template"])
        pmeta = tmpl.setdefault("metadata", {})
        pmeta["name"] = f"{meta['name']}-{idx}-{uuid.uuid4().hex[:5]}"
        pmeta["labels"] = {**(pmeta.get("labels") or {}), "batch.kubernetes.io/controller-uid": meta["uid"],
                           "batch.kubernetes.io/job-name": meta["name"], "controller-uid": meta["uid"],
                           "job-name": meta["name"], INDEX_LABEL: str(idx)}
        pmeta["annotations"] = {**(pmeta.get("annotations") or {}), INDEX_LABEL: str(idx),
                                FAILURE_COUNT_ANNOTATION: str(failures)}
        pmeta["finalizers"] = [TRACKING_FINALIZER]
        pmeta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]
        for c in tmpl["spec"].get("containers", []):
            c["env"] = [*(c.get("env") or []), {"name": "JOB_COMPLETION_INDEX", "valueFrom": {
                "fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_LABEL}']"}}}]
        tmpl["status"] = {"phase": "Pending"}
        self.api.create(PODS, meta["namespace"], tmpl)
        self.pods_created += 1

    def _terminate(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in TERMINAL and not pod["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(ApiError):
                    self.api.delete_obj(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _ttl(self, job: dict[str, Any], mem: _JobMemory) -> None:
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is not None and mem.finished_at is not None and time.monotonic() - mem.finished_at >= int(ttl):
            with contextlib.suppress(ApiError):
                self.api.delete_obj(JOBS, job["metadata"]["namespace"], job["metadata"]["name"],
                                propagation="Background")


def _exit_code(pod: dict[str, Any]) -> int | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return int(term.get("exitCode", 0))
    return None


def _set_condition(conds: list[dict[str, Any]], ctype: str, reason: str, message: str,
                   *, status: str = "True") -> list[dict[str, Any]]:
    out = [c for c in conds if c["type"] != ctype]
    old = next((c for c in conds if c["type"] == ctype), None)
    if old is not None and old["status"] == status and old.get("reason") == reason:
        return conds
    now = now_iso()
    out.append({"type": ctype, "status": status, "reason": reason, "message": message,
                "lastProbeTime": now, "lastTransitionTime": now})
    return out
