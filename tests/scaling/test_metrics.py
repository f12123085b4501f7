"""Prometheus metrics: exposed on an explicit registry, parseable by prometheus_client's parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from parallel_synth.cluster.metrics import Metrics

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SPEC = {
    "samples": 10_000_000,
    "throughput": {"targetPerDay": 170_000},
    "budget": {"maxDollars": 60_000},
    "estimates": {"bytesPerSample": 5_000_000},
}
STATUS = {
    "samples": {"target": 10_000_000, "completed": 3000, "failed": 1000},
    "shards": {"total": 10_000, "completed": 3, "failed": 1},
    "categories": {"geometry": {"target": 2_000_000, "completed": 1000},
                   "materials": {"target": 3_000_000, "completed": 2000}},
    "samplesPerDay": 105_000.0,
    "eta": "2026-04-01T00:00:00Z",
    "workers": {"desired": 75, "active": 70, "pending": 5, "samplesPerDayEach": 1440.0},
    "preemptions": 12,
    "retries": 3,
    "cost": {"gpuHours": 100.0, "spotGpuHours": 90.0, "onDemandGpuHours": 10.0, "dollars": 37.0,
             "dollarsPer1kSamples": 5.0, "projectedDollars": 50_000.0},
    "capacityMode": "on-demand",
    "conditions": [{"type": "BudgetExceeded", "status": "False"}],
    "quality": {"passRate": 0.97},
}


def _families(registry: CollectorRegistry) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _one(fams: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    key = tuple(sorted({"namespace": "synth", "dataset": "p1", **labels}.items()))
    return fams[name][key]


def test_dataset_figures_from_status_are_exposed_and_parse() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.update_from_status("synth", "p1", SPEC, STATUS, now=NOW)
    fams = _families(registry)
    assert all(name.startswith("parallelsynth_") for name in fams)
    assert _one(fams, "parallelsynth_samples_completed_total", category="materials") == 2000
    assert _one(fams, "parallelsynth_samples_target", category="geometry") == 2_000_000
    assert _one(fams, "parallelsynth_shards_failed_total") == 1
    assert _one(fams, "parallelsynth_preemptions_total") == 12
    assert _one(fams, "parallelsynth_retries_total") == 3
    assert _one(fams, "parallelsynth_samples_per_day") == 105_000
    assert _one(fams, "parallelsynth_target_samples_per_day") == 170_000
    assert _one(fams, "parallelsynth_samples_per_day_per_worker") == 1440
    assert _one(fams, "parallelsynth_workers_desired") == 75
    assert _one(fams, "parallelsynth_workers_active") == 70
    assert _one(fams, "parallelsynth_gpu_seconds_total", capacity="spot") == pytest.approx(90 * 3600)
    assert _one(fams, "parallelsynth_cost_dollars_total") == 37.0
    assert _one(fams, "parallelsynth_budget_dollars") == 60_000
    assert _one(fams, "parallelsynth_budget_exceeded") == 0
    assert _one(fams, "parallelsynth_eta_seconds") == 31 * 86400
    assert _one(fams, "parallelsynth_capacity_on_demand") == 1
    assert _one(fams, "parallelsynth_storage_bytes") == 3000 * 5_000_000  # estimated: no storageBytes
    assert _one(fams, "parallelsynth_quality_pass_ratio") == 0.97


def test_a_malformed_condition_entry_is_skipped_not_fatal() -> None:
    registry = CollectorRegistry()
    status = {**STATUS, "conditions": ["junk", None, {"type": "BudgetExceeded", "status": "True"}]}
    Metrics(registry).update_from_status("synth", "p1", SPEC, status, now=NOW)
    assert _one(_families(registry), "parallelsynth_budget_exceeded") == 1


def test_reconcile_durations_errors_and_quality_histogram() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    with metrics.time_reconcile("dataset"):
        pass
    with pytest.raises(RuntimeError), metrics.time_reconcile("dataset"):
        raise RuntimeError("boom")
    for score in (0.55, 0.92, 0.97):
        metrics.observe_shard_quality("synth", "p1", score)
    fams = _families(registry)
    assert fams["parallelsynth_reconcile_duration_seconds_count"][(("handler", "dataset"),)] == 2
    assert fams["parallelsynth_reconcile_errors_total"][(("handler", "dataset"),)] == 1
    buckets = fams["parallelsynth_shard_quality_score_bucket"]
    assert buckets[(("dataset", "p1"), ("le", "0.6"), ("namespace", "synth"))] == 1
    assert buckets[(("dataset", "p1"), ("le", "+Inf"), ("namespace", "synth"))] == 3


def test_registries_are_independent_and_deleted_datasets_disappear() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    ma, _ = Metrics(a), Metrics(b)
    ma.update_from_status("synth", "p1", SPEC, STATUS, now=NOW)
    assert "parallelsynth_samples_completed_total" in _families(a)
    assert "parallelsynth_samples_completed_total" not in _families(b)
    ma.forget("synth", "p1")
    assert "parallelsynth_samples_completed_total" not in _families(a)
