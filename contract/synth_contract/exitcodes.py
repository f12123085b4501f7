"""Which shards of a Job attempt ended with a given worker exit code (read from its pods).

The Job records *that* an index failed (``failedIndexes``), not why. The pods say why: the
render container's terminated ``exitCode`` and the pod's completion index. Exit 3 (the quality
gate failed the shard, see DESIGN "Exit codes") is failed for good by the Job's pod failure
policy (``FailIndex``); the operator must not re-render it in a later attempt either, because
the same seeds would fail the same way. Pure: pods in, batch offsets out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from synth_contract import ranges

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
JOB_NAME_KEYS = ("batch.kubernetes.io/job-name", "job-name")


def offsets_exited_with(
    pods: Iterable[Mapping[str, Any]], *, exit_code: int, container: str, job_name: str, shard_offset: int
) -> list[ranges.Span]:
    """Batch offsets (``shard_offset`` + completion index) of ``job_name``'s pods whose ``container``
    terminated with ``exit_code``."""
    found = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        if next((labels[k] for k in JOB_NAME_KEYS if k in labels), None) != job_name:
            continue
        raw = (meta.get("annotations") or {}).get(INDEX_KEY, labels.get(INDEX_KEY))
        if raw is None:
            continue
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            if cs.get("name") == container and term.get("exitCode") == exit_code:
                found.append((shard_offset + int(raw), shard_offset + int(raw)))
    return ranges.union(found)
