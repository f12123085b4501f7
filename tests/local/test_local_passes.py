"""Extra passes (issue #14) in the plan and in the member table that validate and the worker share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from builders import SMALL, spec, wire

from parallel_synth.local.capacity import PlanInputs, capacity_plan
from synth_contract.multiview import sample_members

PASSES = wire(SMALL, samples=1000, image="x", output={"uri": "file:///tmp/x", "saveScene": "glb"},
              render={"passes": ["rgb", "depth", "segmentation", "albedo", "flow", "semantic"]})


def test_plan_accounts_for_the_bytes_of_each_enabled_pass() -> None:
    plan = capacity_plan(spec(PASSES), inputs=PlanInputs(bytes_per_sample=1e6), now=datetime.now(UTC)).to_json()
    per = plan["bytesPerPass"]
    assert set(per) == {"rgb", "depth", "segmentation", "albedo", "flow", "semantic", "scene"}
    assert sum(per.values()) == pytest.approx(1e6)
    assert plan["bytesPerSampleRgbOnly"] == pytest.approx(per["rgb"])
    assert plan["storageBytesPerPass"]["flow"] == pytest.approx(per["flow"] * 1000)


@pytest.mark.parametrize(("depth_format", "depth_member"), [("png16", "depth.png"), ("exr", "depth.exr")])
def test_sample_members_follow_the_spec(depth_format: str, depth_member: str) -> None:
    members = sample_members(spec(PASSES, render={**PASSES["render"], "depthFormat": depth_format}))
    assert members == {"json", "txt", "png", depth_member, "seg.png", "albedo.png", "flow.exr", "sem.png", "glb"}
    assert "txt" not in sample_members(spec(PASSES, render={**PASSES["render"], "captioner": "none"}))
