"""The autoscaler as pure functions: sizing, bounds, deadline, budget, hysteresis, distribution."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import builders
import pytest
from builders import FLEET, pod

from parallel_synth.cluster.observe import pod_facts
from parallel_synth.decisions.autoscale import (
    Totals,
    autoscale,
    autoscaler_status,
    batch_view,
    eta_text,
    transition_events,
)
from parallel_synth.decisions.cost import BudgetReason, BudgetState, CostReport
from parallel_synth.decisions.scaling import (
    BatchView,
    Inputs,
    ScalerState,
    capacity_mode,
    decide,
    desired_workers,
    distribute,
    stabilize,
)
from parallel_synth.decisions.status import pod_counts, unsettled_gpu_seconds
from parallel_synth.decisions.throughput import Throughput
from parallel_synth.settings import ScalingSettings
from synth_contract.api import AutoscalerStatus, RenderBatchStatus

NOW = datetime(2026, 3, 1, tzinfo=UTC)
T = NOW.timestamp()
OPEN = BudgetState(False, BudgetReason.WITHIN, "ok", 1e9)
CLOSED = BudgetState(True, BudgetReason.PROJECTED, "projected over", 10.0)


@pytest.mark.parametrize(
    ("case", "overrides", "rate", "remaining", "budget", "per_sample", "want", "reason"),
    [
        ("target reached with measured rate", {}, 8640.0, 400_000, None, 0.0, 24, "Target"),
        ("faster workers need fewer", {}, 17280.0, 400_000, None, 0.0, 12, "Target"),
        ("bounded by workers.max", {"workers": {"min": 1, "max": 10}}, 8640.0, 400_000, None, 0.0, 10, "TargetAtMax"),
        ("bounded by workers.min", {"workers": {"min": 30, "max": 50}}, 8640.0, 400_000, None, 0.0, 30, "TargetAtMin"),
        ("no target: as fast as allowed", {"throughput": {}}, 8640.0, 400_000, None, 0.0, 50, "NoTarget"),
        ("never more pods than shards left", {}, 8640.0, 700, None, 0.0, 7, "TargetShardsLeft"),
        ("done: nothing to do", {}, 8640.0, 0, None, 0.0, 0, "Complete"),
        ("suspended", {"suspend": True}, 8640.0, 400_000, None, 0.0, 0, "Suspended"),
        ("budget gate closed", {}, 8640.0, 400_000, CLOSED, 0.0, 0, "ProjectedOverBudget"),
        # $0.01/sample x 100 samples/shard = $1/shard: $10 left pays for 10 shards in flight
        ("budget bounds shards in flight", {}, 8640.0, 400_000, replace(OPEN, remaining_dollars=10.0), 0.01, 10,
         "TargetBudgetBound"),
    ],
)
def test_desired_workers(
    case: str, overrides: dict, rate: float, remaining: int, budget: BudgetState | None, per_sample: float,
    want: int, reason: str,
) -> None:
    spec = builders.spec(FLEET, **overrides)
    n, why = desired_workers(
        spec, per_worker_per_day=rate, remaining_samples=remaining, now=T, budget=budget,
        dollars_per_sample=per_sample,
    )
    assert (n, why) == (want, reason), case


@pytest.mark.parametrize(
    ("days_left", "remaining", "want", "reason"),
    [
        (10.0, 400_000, 24, "Target"),  # the deadline needs 5: the target (24) is higher
        (1.0, 400_000, 47, "Deadline"),  # 400k in 1 day at 8640/worker: 47
        (0.5, 400_000, 50, "DeadlineAtMax"),  # would need 93
        (-1.0, 400_000, 50, "DeadlineAtMax"),  # past the deadline: all we may use
    ],
)
def test_deadline_raises_workers_when_it_needs_more(days_left: float, remaining: int, want: int, reason: str) -> None:
    deadline = (NOW + timedelta(days=days_left)).isoformat()
    spec = builders.spec(FLEET, throughput={"targetPerDay": 200_000, "deadline": deadline})
    assert desired_workers(spec, per_worker_per_day=8640.0, remaining_samples=remaining, now=T) == (want, reason)


SETTINGS = ScalingSettings(min_change_interval_seconds=300, scale_down_stabilization_seconds=1800, tolerance=0.1)


def _run(recs: list[int], *, step: float = 60.0, start: ScalerState | None = None) -> list[int]:
    state = start or ScalerState()
    out = []
    for i, r in enumerate(recs):
        n, state = stabilize(r, state, now=T + i * step, settings=SETTINGS, bounds=(0, 100))
        out.append(n)
    return out


def test_no_flapping_under_noisy_rates() -> None:
    """A rate that wobbles +-15% around the truth for a day moves the fleet a few times at most."""
    rng = random.Random(3)
    spec = builders.spec(FLEET)
    recs = [
        desired_workers(spec, per_worker_per_day=8640.0 * rng.uniform(0.85, 1.15), remaining_samples=400_000, now=T)[0]
        for _ in range(1440)
    ]
    assert len(set(recs)) > 5  # the input really is noisy
    out = _run(recs)
    changes = sum(1 for a, b in itertools.pairwise(out) if a != b)
    assert changes <= 3
    assert min(out[30:]) >= 21  # never sags below the truth's need (24) by more than the noise


def test_scale_up_is_immediate_scale_down_waits_for_the_stabilization_window() -> None:
    out = _run([10] * 10 + [40] * 10 + [10] * 60)
    assert out[9] == 10 and out[10] == 40  # up at once (10 minutes after the last change)
    assert out[10 + 10 + 29] == 40  # still up 29 minutes after the drop
    assert out[-1] == 10  # down after the 30-minute window


def test_minimum_interval_between_changes() -> None:
    out = _run([10, 20, 30, 40, 50, 60])  # one step up per minute
    assert out == [10, 10, 10, 10, 10, 60]  # first change only 5 minutes after the first value


def test_dead_band_ignores_small_reductions_but_not_shortfalls() -> None:
    assert _run([50] + [46] * 60)[-1] == 50
    assert _run([50] + [44] * 60)[-1] == 44
    assert _run([50] + [51] * 20)[-1] == 51


def test_budget_stop_bypasses_hysteresis_and_resume_is_immediate() -> None:
    state = ScalerState(desired=40, last_change=T)
    n, state = stabilize(0, state, now=T + 1, settings=SETTINGS, bounds=(0, 100), force=True)
    assert n == 0
    n, _ = stabilize(30, state, now=T + 2, settings=SETTINGS, bounds=(0, 100))
    assert n == 30


def _b(name: str, remaining: int, *, capacity: str = "spot", established: int = 0) -> BatchView:
    return BatchView(name, remaining=remaining, parallelism=0, capacity=capacity, established=established,
                     running=established)


@pytest.mark.parametrize(
    ("case", "desired", "batches", "want"),
    [
        ("spread evenly, ties to the oldest", 11, [_b("a", 5), _b("b", 20), _b("c", 20)], {"a": 4, "b": 4, "c": 3}),
        ("capped by shards left", 30, [_b("a", 5), _b("b", 20), _b("c", 20)], {"a": 5, "b": 13, "c": 12}),
        ("drained pods count towards the spread", 12, [_b("a", 10, established=8), _b("b", 10)], {"a": 8, "b": 4}),
        # opening batches is the dataset's window rule (test_op_decisions), not the autoscaler's
        ("more than the live batches hold", 30, [_b("a", 5)], {"a": 5}),
        ("scale-down drains established pods", 2, [_b("a", 10, established=6), _b("b", 10, established=3)],
         {"a": 6, "b": 3}),
        ("current capacity first", 6, [_b("a", 10), _b("b", 10, capacity="on-demand")], {"a": 0, "b": 6}),
    ],
)
def test_distribute(case: str, desired: int, batches: list[BatchView], want: dict) -> None:
    got = distribute(desired, batches, mode="on-demand" if "capacity" in case else "spot")
    assert got == want, case


def test_spot_pool_that_keeps_being_preempted_shifts_new_pods_to_on_demand() -> None:
    spec = builders.spec(FLEET)
    cfg = ScalingSettings()
    mode, why, st = capacity_mode(spec, ScalerState(), now=T, preemptions_total=0, spot_workers=20, settings=cfg)
    assert (mode, why) == ("spot", "Spot")
    # 6 preemptions of 20 spot pods within 20 minutes: 0.9 per pod-hour
    mode, why, st = capacity_mode(spec, st, now=T + 1200, preemptions_total=6, spot_workers=20, settings=cfg)
    assert (mode, why) == ("on-demand", "SpotPreempted")
    mode, _, st = capacity_mode(spec, st, now=T + 3 * 3600, preemptions_total=6, spot_workers=0, settings=cfg)
    assert mode == "on-demand"
    mode, why, st = capacity_mode(spec, st, now=T + 1200 + 6 * 3600, preemptions_total=6, spot_workers=0,
                                  settings=cfg)
    assert (mode, why) == ("spot", "SpotRetry")


@pytest.mark.parametrize(
    ("pool", "want"),
    [({"spot": True, "onDemandFallback": False}, "spot"), ({"spot": False}, "on-demand")],
)
def test_no_fallback_without_both_switches(pool: dict, want: str) -> None:
    spec = builders.spec(FLEET, nodePool=pool)
    st = ScalerState()
    for i, n in enumerate([0, 10, 20]):
        mode, _, st = capacity_mode(spec, st, now=T + 600 * i, preemptions_total=n, spot_workers=5,
                                    settings=ScalingSettings())
    assert mode == want


def _inputs(batches: list[BatchView], *, budget: BudgetState = OPEN, preemptions: int = 0) -> Inputs:
    return Inputs(
        remaining_samples=300_000, batches=batches,
        throughput=Throughput(samples_per_day=None, per_worker_per_day=8640.0, measured=False),
        cost=CostReport(0, 0, 0, 0, 0.83, 250.0), budget=budget, preemptions_total=preemptions,
    )


@pytest.mark.parametrize(
    ("budget", "mode", "reason"),
    [
        (None, "on-demand", "SpotPreempted"),
        (1000.0, "on-demand", "SpotPreempted"),  # 300k samples x 10 s at $1/h: $833 fits
        (500.0, "spot", "SpotKeptForBudget"),  # it does not: stay on spot rather than stop
    ],
)
def test_fallback_to_on_demand_only_when_the_budget_affords_it(budget: float | None, mode: str, reason: str) -> None:
    spec = builders.spec(FLEET, budget={"maxDollars": budget} if budget else {})
    pods = [BatchView("a", remaining=100, parallelism=20, running=20, established=20)]
    st = decide(spec, _inputs(pods), ScalerState(), now=T, settings=ScalingSettings()).state
    d = decide(spec, _inputs(pods, preemptions=10), st, now=T + 600, settings=ScalingSettings())
    assert (d.capacity_mode, d.capacity_reason) == (mode, reason)


def test_unschedulable_pods_are_reported_not_counted_and_open_no_batches() -> None:
    spec = builders.spec(FLEET)
    stuck = BatchView("a", remaining=10, parallelism=10, established=4, running=4, unschedulable=6)
    d = decide(spec, _inputs([stuck]), ScalerState(), now=T, settings=ScalingSettings())
    assert d.desired == 24 and d.active == 4 and d.unschedulable == 6
    cond = next(c for c in d.conditions if c.type == "PodsScheduled")
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    assert "6 of 10" in cond.message


def test_budget_stop_keeps_running_shards_and_starts_nothing() -> None:
    spec = builders.spec(FLEET)
    batches = [BatchView("a", remaining=10, parallelism=10, established=7, running=9),
               BatchView("b", remaining=10, parallelism=5, established=0, running=0, pending=5)]
    d = decide(spec, _inputs(batches, budget=CLOSED), ScalerState(desired=15, last_change=T), now=T + 1,
               settings=ScalingSettings())
    assert d.desired == 0
    assert d.parallelism == {"a": 7, "b": 0}  # established pods finish, young and pending ones go
    assert next(c for c in d.conditions if c.type == "BudgetExceeded").status == "True"


def test_pod_counts_reads_pods_like_the_scheduler_reports_them() -> None:
    pods = [
        pod(phase="Running", started=NOW - timedelta(hours=1)),
        pod(phase="Running", started=NOW - timedelta(seconds=10)),
        pod(phase="Pending", started=None),
        pod(phase="Pending", started=None, unschedulable=True),
        pod(phase="Succeeded", started=NOW - timedelta(hours=2)),
    ]
    c = pod_counts([pod_facts(p) for p in pods], now=NOW, tick_seconds=60)
    assert (c.established, c.running, c.pending, c.unschedulable) == (1, 2, 1, 1)


def test_autoscale_state_survives_a_round_trip_through_the_status() -> None:
    """The operator keeps nothing in memory: the next tick reads its state back from status."""
    spec = builders.spec(FLEET)
    live = [batch_view("a", builders.batch_spec(shard_count=10, parallelism=0), RenderBatchStatus())]
    cfg = ScalingSettings()
    first = autoscale(spec, Totals(), live, AutoscalerStatus(), now=NOW, settings=cfg)
    assert first.desired == 24 and first.parallelism == {"a": 10}
    kept = autoscaler_status(first)
    assert AutoscalerStatus.model_validate(kept.wire()) == kept  # fits the CRD's status schema
    second = autoscale(spec, Totals(samples_completed=2000), live, kept, now=NOW + timedelta(minutes=1), settings=cfg)
    assert second.state.desired == 24
    assert second.window is not None and len(second.window.points) == 1  # kept points 15 min apart
    assert (eta_text(first, now=NOW) or "").endswith("Z") and first.desired == 24
    # a steady tick leaves the persisted state as it was: no status write just for it
    again = autoscaler_status(second)
    third = autoscale(spec, Totals(samples_completed=2000), live, again, now=NOW + timedelta(minutes=2),
                      settings=cfg)
    assert autoscaler_status(third) == again


def test_an_eta_after_the_year_9999_is_unknown_not_a_crash() -> None:
    """1e11 samples at a few a day: the reconcile goes on with no status.eta (issue #24)."""
    spec = builders.spec(FLEET)
    live = [batch_view("a", builders.batch_spec(shard_count=10, parallelism=0), RenderBatchStatus())]
    first = autoscale(spec, Totals(), live, AutoscalerStatus(), now=NOW, settings=ScalingSettings())
    assert eta_text(replace(first, eta_seconds=1e15), now=NOW) is None
    assert eta_text(replace(first, eta_seconds=86400.0), now=NOW) == "2026-03-02T00:00:00Z"


def test_transition_events_fire_once() -> None:
    spec = builders.spec(FLEET, budget={"maxDollars": 1.0})
    cfg = ScalingSettings()
    d = autoscale(spec, Totals(), [], AutoscalerStatus(), now=NOW, settings=cfg)
    events = transition_events([], d)
    assert [e.reason for e in events] == ["ProjectedOverBudget"]
    after = d.conditions
    again = autoscale(spec, Totals(budget_was_exceeded=True), [], AutoscalerStatus(), now=NOW, settings=cfg)
    assert transition_events(after, again) == []


def test_gpu_time_of_shards_still_to_render_is_not_settled() -> None:
    """A preempted attempt of shard 12 (Job index 2, offset 10) waits until the shard commits."""
    def ended(index: int, hours: float, *, job: str = "b-a1") -> dict:
        end = NOW - timedelta(hours=1)
        return {
            "metadata": {"name": f"p{index}", "labels": {"job-name": job},
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
            "status": {"phase": "Failed", "startTime": (end - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "containerStatuses": [{"state": {"terminated": {
                           "exitCode": 143, "finishedAt": end.strftime("%Y-%m-%dT%H:%M:%SZ")}}}]},
        }

    pods = [pod_facts(p) for p in
            [ended(0, 1.0), ended(2, 2.0), ended(2, 4.0, job="b-a0"), {"metadata": {}, "status": {"phase": "Running"}}]]
    seconds = unsettled_gpu_seconds(pods, settled=[(10, 10)], shard_offset=10, job_name="b-a1", gpus=1)
    assert seconds == 2 * 3600  # index 0 (offset 10) settled; the old Job's pod is not ours
    assert unsettled_gpu_seconds(pods, settled=[(10, 12)], shard_offset=10, job_name="b-a1", gpus=2) == 0
