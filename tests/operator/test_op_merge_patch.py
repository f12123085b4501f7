"""Status patches remove nested keys too (issue #22 item 12).

A JSON merge patch keeps every key it does not name. The status patch used to clear only
top-level fields, so ``status.workers.admitted`` (written while ``spec.queue`` was set) stayed
for good after the queue was removed. The check applies each patch as the API server does
(RFC 7386) and compares with the status the decision meant.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from builders import spec

from parallel_synth.decisions.dataset import decide_dataset
from parallel_synth.decisions.effects import PatchStatus, merge_diff
from parallel_synth.settings import Settings
from synth_contract.api import SynthDatasetStatus

NOW = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies ``application/merge-patch+json``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


CASES = {
    "nested-key-removed": ({"workers": {"desired": 2, "admitted": 2, "admission": "2/2"}}, {"workers": {"desired": 2}}),
    "nested-key-changed": ({"cost": {"dollars": 1.0, "gpuHours": 2.0}}, {"cost": {"dollars": 1.5, "gpuHours": 2.0}}),
    "deep-map-entry-removed": ({"categories": {"a": {"target": 1, "completed": 0}, "b": {"target": 2}}},
                               {"categories": {"a": {"target": 1, "completed": 1}}}),
    "list-replaced": ({"conditions": [{"type": "A"}, {"type": "B"}]}, {"conditions": [{"type": "B"}]}),
    "top-level-removed": ({"eta": "x", "phase": "Running"}, {"phase": "Running"}),
    "object-becomes-scalar": ({"x": {"a": 1}}, {"x": 3}),
}


@pytest.mark.parametrize(("before", "after"), CASES.values(), ids=CASES.keys())
def test_the_patch_turns_the_old_status_into_the_new_one(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert merge_patch(before, merge_diff(before, after)) == after


def test_workers_admitted_goes_when_the_queue_is_removed() -> None:
    queued = spec(queue="gpu-queue")
    first = decide_dataset(name="ds", spec=queued, status=SynthDatasetStatus(), batches=[], index_job=None,
                           generation=1, now=NOW, settings=Settings())
    stored = first.status.wire()
    assert "admitted" in stored["workers"]
    plain = decide_dataset(name="ds", spec=spec(), status=SynthDatasetStatus.model_validate(stored), batches=[],
                           index_job=None, generation=2, now=NOW, settings=Settings())
    patch = next(e.patch for e in plain.effects if isinstance(e, PatchStatus))
    written = merge_patch(stored, patch)
    assert "admitted" not in written["workers"] and "admission" not in written["workers"]
    assert written == plain.status.wire()
