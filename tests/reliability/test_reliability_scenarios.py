"""The fault scenarios in the run-in-a-box harness (see box/scenarios.py and docs/reliability.md).

Each renders a tiny dataset with the real operator and real renderer pods while one kind of fault
is injected, then requires: ``synthctl validate`` clean (apart from the expected failed shards and
the known dataset.json gap), every global sample index exactly once, status == bucket, the
operator still running. ``scripts/reliability_report.py`` runs the same catalogue for the table.
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
    assert result.duplicates == 0 and result.missing == 0 and result.unexpected == 0, summary
    assert result.validate_ok, summary
    assert result.status_matches, summary
    assert result.operator_alive, summary
