"""Cost as pure functions: capacity from node labels, GPU time of pods, dollars, budget gate."""

from __future__ import annotations

from datetime import UTC, datetime

import builders
import pytest
from builders import FLEET

from parallel_synth.decisions.cost import (
    BudgetReason,
    Capacity,
    GpuTime,
    budget_state,
    capacity_of_node,
    cost_report,
    dollars,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("labels", "want"),
    [
        ({"cloud.google.com/gke-spot": "true"}, Capacity.SPOT),
        ({"cloud.google.com/gke-preemptible": "true"}, Capacity.SPOT),
        ({"eks.amazonaws.com/capacityType": "SPOT"}, Capacity.SPOT),
        ({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, Capacity.ON_DEMAND),
        ({"karpenter.sh/capacity-type": "spot"}, Capacity.SPOT),
        ({"karpenter.sh/capacity-type": "on-demand"}, Capacity.ON_DEMAND),
        ({"kubernetes.azure.com/scalesetpriority": "spot"}, Capacity.SPOT),
        ({"kubernetes.azure.com/scalesetpriority": "regular"}, Capacity.ON_DEMAND),
        ({"cloud.google.com/gke-spot": "false"}, Capacity.ON_DEMAND),
        ({}, Capacity.ON_DEMAND),
        (None, Capacity.ON_DEMAND),
    ],
)
def test_capacity_of_node(labels: dict | None, want: Capacity) -> None:
    assert capacity_of_node(labels) == want


def test_dollars_at_spot_and_on_demand_prices() -> None:
    spec = builders.spec(FLEET, pricing={"spotPerGpuHour": 0.3, "onDemandPerGpuHour": 1.0})
    assert dollars(GpuTime(spot=10 * 3600, on_demand=2 * 3600), spec.pricing) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("case", "gpu_s_per_sample", "capacity", "per_1k", "projected"),
    [
        # 400k samples x 10 GPU-s at $0.30/h = $333.33; $3 spent, 100k done: 300k left = $250
        ("prior before measurement", None, None, 0.8333, 253.0),
        ("measured slower than the prior", 20.0, None, 1.6667, 503.0),
        ("new pods go on-demand", 10.0, "on-demand", 2.7778, 836.33),
    ],
)
def test_cost_report(case: str, gpu_s_per_sample: float | None, capacity: str | None, per_1k: float,
                     projected: float) -> None:
    spec = builders.spec(FLEET)
    r = cost_report(spec, GpuTime(spot=36000.0), completed_samples=100_000,
                    gpu_seconds_per_sample=gpu_s_per_sample, capacity=capacity)
    assert r.dollars == pytest.approx(3.0)
    assert r.dollars_per_1k_samples == pytest.approx(per_1k, abs=1e-3), case
    assert r.projected_dollars == pytest.approx(projected, abs=0.01), case
    assert r.status()["dollarsPer1kSamples"] == round(per_1k, 4)


@pytest.mark.parametrize(
    ("case", "budget", "spent_hours", "was", "exceeded", "reason"),
    [
        ("no budget", None, 0, False, False, BudgetReason.NO_BUDGET),
        ("well within", 1000.0, 10, False, False, BudgetReason.WITHIN),
        ("projection reaches the budget", 300.0, 10, False, True, BudgetReason.PROJECTED),
        ("spend reaches the budget", 3.0, 10, False, True, BudgetReason.SPEND),
        # projected 336.33: 1% under a 340 budget resumes only if it was not stopped already
        ("just under the budget: runs", 340.0, 10, False, False, BudgetReason.WITHIN),
        ("just under after a stop: stays stopped", 340.0, 10, True, True, BudgetReason.PROJECTED),
    ],
)
def test_budget_gate(case: str, budget: float | None, spent_hours: float, was: bool, exceeded: bool,
                     reason: BudgetReason) -> None:
    spec = builders.spec(FLEET, budget={"maxDollars": budget} if budget is not None else {})
    report = cost_report(spec, GpuTime(spot=spent_hours * 3600), completed_samples=0)
    state = budget_state(spec, report, was_exceeded=was)
    assert (state.exceeded, state.reason) == (exceeded, reason), case
    cond = state.condition()
    assert cond.type == "BudgetExceeded" and cond.status == ("True" if exceeded else "False")


def test_failed_samples_are_not_projected_and_do_not_stop_a_degraded_dataset_early() -> None:
    """Issue #22 item 9: shards failed for good are never rendered again, so they cost nothing more."""
    spec = builders.spec(FLEET, budget={"maxDollars": 100.0})  # 400k samples at 10 GPU-s each, spot 0.3 $/h
    gpu = GpuTime(spot=36000.0)  # 3 $ spent
    healthy = cost_report(spec, gpu, completed_samples=100_000, gpu_seconds_per_sample=10.0)
    degraded = cost_report(spec, gpu, completed_samples=100_000, failed_samples=250_000, gpu_seconds_per_sample=10.0)
    per_sample = 10.0 * 0.3 / 3600
    assert healthy.projected_dollars == pytest.approx(3.0 + 300_000 * per_sample)
    assert degraded.projected_dollars == pytest.approx(3.0 + 50_000 * per_sample)
    assert budget_state(spec, healthy, was_exceeded=False).exceeded
    assert not budget_state(spec, degraded, was_exceeded=False).exceeded
