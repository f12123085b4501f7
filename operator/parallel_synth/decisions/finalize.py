"""Finishing a dataset: the index Job between "every shard committed" and ``Succeeded``.

A dataset whose shards are all committed is not done until its index (metadata.parquet,
metadata.jsonl) and ``dataset.json`` are in the bucket, as they are after a local run. The
operator runs ``synthctl index`` as one small Job for that (see ``jobs.build_index_job``); this
module decides, from the Job's state, what the dataset's status says meanwhile. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parallel_synth.decisions.batch import EventSpec
from parallel_synth.decisions.status import set_condition
from synth_contract.api import DatasetPhase


@dataclass(frozen=True)
class FinalizeDecision:
    status: dict[str, Any]
    create_job: bool = False
    events: list[EventSpec] = field(default_factory=list)


def needs_index(status: dict[str, Any]) -> bool:
    """True when the shards are all committed and the index is not written yet."""
    return status.get("phase") == DatasetPhase.SUCCEEDED.value and (status.get("index") or {}).get(
        "phase"
    ) != "Succeeded"


def finalize(
    status: dict[str, Any], events: list[EventSpec], *, job: str, job_state: str | None, job_exists: bool,
    now: datetime,
) -> FinalizeDecision:
    """Hold a fully rendered dataset in Running until its index Job completes.

    ``job_state`` is 'Complete', 'Failed' or None (running or absent); ``job_exists`` says which.
    """
    if not needs_index(status):
        return FinalizeDecision(status=status, events=events)
    st = dict(status)
    conds = st.get("conditions") or []
    if job_state == "Complete":
        st["index"] = {"phase": "Succeeded", "job": job}
        st["conditions"] = set_condition(conds, "Indexed", True, "IndexWritten",
                                         "index/metadata.parquet, metadata.jsonl and dataset.json written", now=now)
        return FinalizeDecision(status=st, events=events)
    held = [e for e in events if e.reason != "Finished"]  # "Finished" is said once, when indexed
    if job_state == "Failed":
        st["index"] = {"phase": "Failed", "job": job}
        st["phase"] = DatasetPhase.DEGRADED.value
        msg = f"index Job {job} failed; every shard is committed, rerun with `synthctl index`"
        conds = set_condition(conds, "Indexed", False, "IndexFailed", msg, now=now)
        conds = set_condition(conds, "Ready", False, "IndexFailed", msg, now=now)
        conds = set_condition(conds, "Degraded", True, "IndexFailed", msg, now=now)
        st["conditions"] = conds
        new_failure = (status.get("index") or {}).get("phase") != "Failed"
        return FinalizeDecision(status=st, events=held + ([EventSpec("Warning", "IndexFailed", msg)] if new_failure else []))
    st["index"] = {"phase": "Running", "job": job}
    st["phase"] = DatasetPhase.RUNNING.value
    msg = "every shard committed; writing the index and dataset.json"
    conds = set_condition(conds, "Indexed", False, "Indexing", msg, now=now)
    conds = set_condition(conds, "Ready", False, "Indexing", msg, now=now)
    conds = set_condition(conds, "Progressing", True, "Indexing", msg, now=now)
    st["conditions"] = conds
    started = [EventSpec("Normal", "Indexing", f"all shards committed; index Job {job} started")] if not job_exists else []
    return FinalizeDecision(status=st, create_job=not job_exists, events=held + started)
