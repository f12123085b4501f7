"""Invalid SynthDatasets reaching the real operator (in the run-in-a-box harness).

The emulator enforces only what every API object gets (RFC 1123 names, valid labels), not the
CRD's schema, so these objects reach the operator as they would on a cluster whose CRD is older
than the operator, or through a name the CRD allows but a label value does not. For each one the
operator must set ``SpecValid=False`` naming the field, post one ``SpecInvalid`` Warning Event,
create nothing, and stay healthy: a valid dataset applied afterwards still gets its batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from box.apiserver import JOBS, RB
from box.cluster import NAMESPACE, Box, tiny_spec
from builders import with_field

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]


# (dataset name, spec path, bad value, text the condition and the event must contain)
CASES: list[tuple[str, str, Any, str]] = [
    ("wrong-type", "samples", "lots", "spec.samples"),
    ("unknown-field", "sampels", 3, "spec.sampels"),
    ("zero-samples", "samples", 0, "spec.samples"),
    ("workers-inverted", "workers", {"min": 3, "max": 1}, "spec.workers"),
    ("unknown-category", "categories", [{"name": "dragons"}], "spec.categories[0].name"),
    ("huge-image", "image", "r" * 200_000, "spec.image"),
    ("http-uri", "output.uri", "http://example.com/x", "spec.output.uri"),
    ("past-deadline", "throughput.deadline", "2001-01-01T00:00:00Z", "spec.throughput.deadline"),
]
# Valid object names that cannot become label values or RenderBatch.spec.dataset (a DNS label).
NAME_CASES: list[str] = ["dotted.name", "n" * 70]


async def _refused(tmp_path: Path, specs: dict[str, tuple[dict[str, Any], str]]) -> None:
    """Apply each ``name: (spec, field)``, then check the verdicts, events, children and health."""
    async with Box(tmp_path) as box:
        await box.start_operator()
        good = tiny_spec(endpoint=box.endpoint, samples=6, shard_size=3)
        for name, (spec, _) in specs.items():
            box.apply_dataset(name, spec or good)

        def verdict(name: str) -> dict[str, Any] | None:
            conds = box.status(name).get("conditions") or []
            return next((c for c in conds if c.get("type") == "SpecValid"), None)

        try:
            await box.wait_for(lambda: all(verdict(n) is not None for n in specs), timeout=30,
                               what="a SpecValid verdict on every invalid dataset")
        except TimeoutError:
            errors = [line for line in box.operator_log().splitlines() if '"error"' in line][-5:]
            pytest.fail(f"no SpecValid verdict on {[n for n in specs if verdict(n) is None]}; "
                        f"operator errors:\n" + "\n".join(e[:600] for e in errors))
        box.apply_dataset("healthy", good)
        await box.wait_for(lambda: any(b["spec"]["dataset"] == "healthy" for b in box.api.select(RB, NAMESPACE)),
                           timeout=60, what="the valid dataset's first RenderBatch")
        events = box.events()
        for name, (_, field) in specs.items():
            cond = verdict(name)
            assert cond is not None and cond["status"] == "False", (name, cond)
            assert field in cond.get("message", ""), (name, cond)
            assert len(cond.get("message", "")) <= 2048, "condition messages stay bounded"
            warnings = [e for e in events if e["involvedObject"]["name"] == name and e["type"] == "Warning"
                        and e["reason"] == "SpecInvalid"]
            assert len(warnings) == 1, (name, [e["reason"] for e in events if e["involvedObject"]["name"] == name])
            assert field in warnings[0]["message"] and len(warnings[0]["message"]) <= 1024, warnings[0]["message"]
            assert not [b for b in box.api.select(RB, NAMESPACE) if b["spec"].get("dataset") == name], name
        assert {j["metadata"]["labels"].get("parallelsynth.io/dataset") for j in box.api.select(JOBS)} <= {"healthy"}
        assert box.operator_alive()


async def test_invalid_specs_are_refused_and_the_operator_stays_healthy(tmp_path: Path) -> None:
    good = tiny_spec(endpoint="http://127.0.0.1:1", samples=6, shard_size=3)
    await _refused(tmp_path, {name: (with_field(good, path, value), field) for name, path, value, field in CASES})


async def test_names_that_cannot_be_labels_are_refused(tmp_path: Path) -> None:
    await _refused(tmp_path, {name: ({}, "metadata.name") for name in NAME_CASES})
