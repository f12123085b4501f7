"""Cost: GPU-seconds by capacity type, dollars, projections and the budget gate.

Pure functions, no I/O, no clock: time is always an argument. The operator feeds them pods and
nodes read from the API; the simulator feeds them simulated pods; both get the same numbers.

Capacity type comes from the node a pod ran on. Each cloud labels spot nodes its own way:

=====================================  =============================
label                                  spot value
=====================================  =============================
``cloud.google.com/gke-spot``          ``"true"``
``cloud.google.com/gke-preemptible``   ``"true"``
``eks.amazonaws.com/capacityType``     ``"SPOT"``
``karpenter.sh/capacity-type``         ``"spot"``
``kubernetes.azure.com/scalesetpriority``  ``"spot"``
=====================================  =============================

Anything else (or an unknown node) counts as on-demand: a bill that is too high is a better
surprise than one that is too low.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from synth_contract import multiview
from synth_contract.api import Condition, PricingSpec, SynthDatasetSpec


class Capacity(StrEnum):
    """Where a pod runs; the value is what RenderBatch ``spec.capacity`` holds."""

    SPOT = "spot"
    ON_DEMAND = "on-demand"


SPOT_LABELS: dict[str, str] = {
    "cloud.google.com/gke-spot": "true",  # GKE
    "cloud.google.com/gke-preemptible": "true",  # GKE (preemptible VMs)
    "eks.amazonaws.com/capacityType": "SPOT",  # EKS managed node groups
    "karpenter.sh/capacity-type": "spot",  # Karpenter (EKS and others)
    "kubernetes.azure.com/scalesetpriority": "spot",  # AKS
}
"""Node label -> value (as the cloud writes it; compared case-insensitively) that marks a spot or
preemptible node. The one table: the cost code bills these as spot and the on-demand node
affinity of ``jobs.py`` excludes every one of them."""


def spot_label_values(value: str) -> list[str]:
    """The spellings of a spot label value a node may carry (what ``capacity_of_node`` accepts)."""
    return sorted({value, value.lower(), value.upper()})


def capacity_of_node(labels: Mapping[str, str] | None) -> Capacity:
    """Spot or on-demand, from a node's labels (GKE, EKS, Karpenter, AKS)."""
    for key, spot_value in SPOT_LABELS.items():
        value = (labels or {}).get(key)
        if value is not None and value.lower() == spot_value.lower():
            return Capacity.SPOT
    return Capacity.ON_DEMAND


# --------------------------------------------------------------------------- GPU time of pods


@dataclass(frozen=True)
class GpuTime:
    """GPU-seconds split by capacity type."""

    spot: float = 0.0
    on_demand: float = 0.0

    @property
    def total(self) -> float:
        return self.spot + self.on_demand

    def __add__(self, other: GpuTime) -> GpuTime:
        return GpuTime(self.spot + other.spot, self.on_demand + other.on_demand)

    def add(self, capacity: Capacity | str, seconds: float) -> GpuTime:
        """A copy with ``seconds`` added to one capacity type."""
        if capacity == Capacity.SPOT:
            return GpuTime(self.spot + seconds, self.on_demand)
        return GpuTime(self.spot, self.on_demand + seconds)


# --------------------------------------------------------------------------- dollars


def dollars(gpu: GpuTime, pricing: PricingSpec) -> float:
    """Dollars for GPU time at the dataset's prices."""
    return (gpu.spot * pricing.spot_per_gpu_hour + gpu.on_demand * pricing.on_demand_per_gpu_hour) / 3600.0


@dataclass(frozen=True)
class CostReport:
    """What status.cost shows."""

    gpu_hours: float
    spot_gpu_hours: float
    on_demand_gpu_hours: float
    dollars: float
    dollars_per_1k_samples: float
    projected_dollars: float

    def status(self) -> dict[str, float]:
        """The ``status.cost`` patch (camelCase, rounded for humans)."""
        return {
            "gpuHours": round(self.gpu_hours, 3),
            "spotGpuHours": round(self.spot_gpu_hours, 3),
            "onDemandGpuHours": round(self.on_demand_gpu_hours, 3),
            "dollars": round(self.dollars, 2),
            "dollarsPer1kSamples": round(self.dollars_per_1k_samples, 4),
            "projectedDollars": round(self.projected_dollars, 2),
        }


def price_per_gpu_hour(spec: SynthDatasetSpec, capacity: Capacity | str | None = None) -> float:
    """$ per GPU-hour of a capacity type (default: where new pods go, spot when ``nodePool.spot``)."""
    cap = capacity or (Capacity.SPOT if spec.node_pool.spot else Capacity.ON_DEMAND)
    return spec.pricing.spot_per_gpu_hour if cap == Capacity.SPOT else spec.pricing.on_demand_per_gpu_hour


def cost_report(
    spec: SynthDatasetSpec,
    gpu: GpuTime,
    *,
    completed_samples: int,
    failed_samples: int = 0,
    gpu_seconds_per_sample: float | None = None,
    capacity: Capacity | str | None = None,
) -> CostReport:
    """Spend so far, $ per 1000 samples, and the projected total at the current rate.

    ``$ per sample = GPU-seconds per sample x price of the capacity new pods go to``, the
    GPU-seconds per sample being the measured one (:mod:`parallel_synth.decisions.throughput`, which
    includes GPU time wasted by preemptions and failures) or, before any measurement, the
    spec's ``estimates.gpuSecondsPerSample``. Dividing the spend by the committed samples
    instead would be wildly wrong early on (a fleet that just started has spent hours and
    committed nothing). The projection is ``spent + remaining samples x $ per sample``: it
    slightly over-counts the shards in flight, which errs on the safe side for a budget.
    Samples of shards failed for good (``failed_samples``) are never rendered again, so they are
    not remaining either (issue #22 item 9: the autoscaler already subtracts them; a Degraded
    dataset was projected too high and ``ProjectedOverBudget`` stopped work early).
    """
    spent = dollars(gpu, spec.pricing)
    per_gpu_s = gpu_seconds_per_sample or multiview.estimated_gpu_seconds_per_sample(spec)  # all views
    per_sample = per_gpu_s * price_per_gpu_hour(spec, capacity) / 3600.0
    remaining = max(0, spec.samples - completed_samples - failed_samples)
    return CostReport(
        gpu_hours=gpu.total / 3600.0,
        spot_gpu_hours=gpu.spot / 3600.0,
        on_demand_gpu_hours=gpu.on_demand / 3600.0,
        dollars=spent,
        dollars_per_1k_samples=per_sample * 1000.0,
        projected_dollars=spent + remaining * per_sample,
    )


# --------------------------------------------------------------------------- budget


class BudgetReason(StrEnum):
    """Reasons of the ``BudgetExceeded`` condition."""

    WITHIN = "WithinBudget"
    NO_BUDGET = "NoBudget"
    SPEND = "SpendReachedBudget"
    PROJECTED = "ProjectedOverBudget"


@dataclass(frozen=True)
class BudgetState:
    """Whether new work may start, and why (the ``BudgetExceeded`` condition)."""

    exceeded: bool
    reason: BudgetReason
    message: str
    remaining_dollars: float = math.inf

    def condition(self) -> Condition:
        """The condition (without ``lastTransitionTime``; the status writer sets it)."""
        return Condition(type="BudgetExceeded", status="True" if self.exceeded else "False", reason=str(self.reason),
                         message=self.message)


def budget_state(
    spec: SynthDatasetSpec, report: CostReport, *, was_exceeded: bool = False, resume_margin: float = 0.02
) -> BudgetState:
    """New work stops when the spend, or the projected total, reaches ``budget.maxDollars``.

    Running shards are left to finish (the autoscaler drains; it does not kill). A stop on the
    projection lifts only once the projection is ``resume_margin`` below the budget (measured
    rates are noisy: the gate must not flap); raising the budget lifts it at once.
    """
    cap = spec.budget.max_dollars
    if cap is None:
        return BudgetState(False, BudgetReason.NO_BUDGET, "no budget.maxDollars set")
    remaining = cap - report.dollars
    if report.dollars >= cap:
        return BudgetState(
            True,
            BudgetReason.SPEND,
            f"spent ${report.dollars:,.2f} of the ${cap:,.2f} budget: new work stopped, running shards finish",
            remaining,
        )
    threshold = cap * (1.0 - resume_margin) if was_exceeded else cap
    if report.projected_dollars >= threshold:
        return BudgetState(
            True,
            BudgetReason.PROJECTED,
            f"projected total ${report.projected_dollars:,.2f} reaches the ${cap:,.2f} budget "
            f"(${report.dollars_per_1k_samples:,.2f} per 1000 samples): new work stopped, running shards "
            "finish; raise spec.budget.maxDollars or lower spec.samples to continue",
            remaining,
        )
    return BudgetState(
        False,
        BudgetReason.WITHIN,
        f"projected ${report.projected_dollars:,.2f} of the ${cap:,.2f} budget",
        remaining,
    )
