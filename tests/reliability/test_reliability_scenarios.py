"""The fault scenarios in the run-in-a-box harness (see box/scenarios.py and docs/reliability.md).

Each renders a tiny dataset with the real operator and real renderer pods while one kind of fault
is injected, then requires: the fault really happened; ``synthctl validate`` clean (apart from the
expected failed shards); every global sample index exactly once; no shard committed twice and every
tar the one its manifest committed; status == bucket; ``status.preemptions``/``retries`` as the
faults imply; the operator still running. ``scripts/reliability_report.py`` runs the same catalogue
for the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from box.scenarios import SCENARIOS, Scenario

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(360)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(scenario: Scenario, tmp_path: Path) -> None:
    result = await scenario.run(tmp_path)
    summary = json.dumps(result.to_json(), indent=1)
    assert not result.error, summary
    assert result.faults or scenario.name == "baseline", f"no fault was injected:\n{summary}"
    assert all(result.faults.get(k) for k in scenario.proves), f"expected faults {scenario.proves}:\n{summary}"
    assert result.duplicates == 0 and result.missing == 0 and result.unexpected == 0, summary
    assert not result.double_commits, f"shards committed twice:\n{summary}"
    assert result.commits == result.committed_shards, f"the proxy saw every commit, once:\n{summary}"
    assert not result.truth_problems, summary
    assert result.validate_ok, summary
    assert result.status_matches, summary
    assert result.operator_alive, summary
    assert result.counters_match, f"{result.counters_detail}\n{summary}"
    assert result.ok, summary
