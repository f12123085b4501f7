"""The capacity plan of a dataset: storage, GPU-hours, wall time, cost and fleet size.

Pure arithmetic on the spec and a few inputs the planner cannot know before the run
(render time and stored bytes per sample, the spot share and the work lost to preemptions).
Each such input is returned as an ``Assumption`` with where its value came from, so the
output can say which numbers are measured facts of the spec and which are guesses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from synth_contract import multiview
from synth_contract.api import PassName, SynthDatasetSpec
from synth_contract.passes import PASS_WEIGHTS
from synth_contract.simcost import bake_seconds_per_sample

SECONDS_PER_DAY = 86_400

DEFAULT_SPOT_REWORK = 0.03
"""Fraction of spot GPU time redone after preemptions (checkpoints bound it to samples in flight)."""


@dataclass(frozen=True)
class Assumption:
    """An input the plan depends on but cannot measure, and where its value came from."""

    name: str
    value: float
    source: str  # "flag", "manifest (spec.estimates)", "default"
    note: str = ""


@dataclass(frozen=True)
class PlanInputs:
    """Overrides from the command line; ``None`` means: take the manifest's value or the default."""

    gpu_seconds_per_sample: float | None = None
    bytes_per_sample: float | None = None
    spot_share: float | None = None
    spot_rework: float | None = None
    render_busy_ratio: float | None = None
    """Share of a render pod's time inside Blender's render call (issue #25): GPU time per sample is
    the render time over it. None: 1 (pods render all the time) unless ``measured_busy_ratio``."""
    measured_busy_ratio: float | None = None
    """The fleet's measured ratio (``status.renderBusyRatio`` of the object planned), used without a flag."""


@dataclass(frozen=True)
class CostPlan:
    on_demand: float
    spot: float
    mix: float


@dataclass(frozen=True)
class CapacityPlan:
    """Everything ``synthctl plan`` prints; ``to_json`` gives the camelCase document."""

    samples: int
    shards: int
    bytes_per_sample: float
    bytes_per_sample_rgb_only: float
    storage_bytes: float
    storage_bytes_rgb_only: float
    gpu_seconds_per_sample: float
    gpu_hours: float
    samples_per_day_per_worker: float
    days_at_min_workers: float | None
    days_at_max_workers: float
    target_per_day: int | None
    workers_for_target: int | None
    workers_for_deadline: int | None
    days: float
    workers_used_for_days: int
    spot_share: float
    cost: CostPlan
    dollars_per_sample: CostPlan
    assumptions: list[Assumption] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bytes_per_pass: dict[str, float] = field(default_factory=dict)
    """bytesPerSample split over the enabled passes (plus json, caption, scene file) by ``passes.PASS_WEIGHTS``."""
    views: int = 1
    """Cameras per sample (render.views.count; with categories[].render the most any category has): GPU
    time and bytes per sample count them for each category's share of the samples."""
    frames: int = 1
    """Frames per sample (render.frames.count, the most any category has), counted the same way."""
    bake_seconds_per_sample: float = 0.0
    """Bake seconds of simulations (fluids/effects) in an average sample, included in gpu_seconds_per_sample
    (0 when that comes from a flag: a measured figure of the whole sample)."""

    def to_json(self) -> dict[str, Any]:
        def costs(c: CostPlan) -> dict[str, float]:
            return {"onDemand": c.on_demand, "spot": c.spot, "mix": c.mix}

        return {
            "samples": self.samples,
            "shards": self.shards,
            "bytesPerSample": self.bytes_per_sample,
            "bytesPerSampleRgbOnly": self.bytes_per_sample_rgb_only,
            "storageBytes": self.storage_bytes,
            "storageBytesRgbOnly": self.storage_bytes_rgb_only,
            "gpuSecondsPerSample": self.gpu_seconds_per_sample,
            "gpuHours": self.gpu_hours,
            "samplesPerDayPerWorker": self.samples_per_day_per_worker,
            "daysAtWorkers": {"min": self.days_at_min_workers, "max": self.days_at_max_workers},
            "targetPerDay": self.target_per_day,
            "workersForTarget": self.workers_for_target,
            "workersForDeadline": self.workers_for_deadline,
            "days": self.days,
            "workersUsedForDays": self.workers_used_for_days,
            "spotShare": self.spot_share,
            "costDollars": costs(self.cost),
            "dollarsPerSample": costs(self.dollars_per_sample),
            "assumptions": [asdict(a) for a in self.assumptions],
            "warnings": list(self.warnings),
            "bytesPerPass": dict(self.bytes_per_pass),
            "storageBytesPerPass": {k: v * self.samples for k, v in self.bytes_per_pass.items()},
            "views": self.views,
            "frames": self.frames,
            "bakeSecondsPerSample": self.bake_seconds_per_sample,
        }


def _busy_ratio(inputs: PlanInputs) -> tuple[float, Assumption]:
    """The render busy ratio the plan divides render time by, and where it came from."""
    note = "GPU time per sample = render time / ratio"
    for value, source in ((inputs.render_busy_ratio, "flag"),
                          (inputs.measured_busy_ratio, "measured (status.renderBusyRatio)")):
        if value is not None:
            if not 0 < value <= 1:
                raise ValueError(f"render busy ratio must be within (0, 1], got {value}")
            return value, Assumption("renderBusyRatio", value, source, note)
    return 1.0, Assumption("renderBusyRatio", 1.0, "default", note + "; measured once pods commit shards "
                           "(kubectl get sds: Busy)")


def rgb_fraction(passes: list[str]) -> float:
    """Share of a sample's stored bytes that the RGB image takes, given its passes (``passes.PASS_WEIGHTS``)."""
    total = sum(PASS_WEIGHTS.get(str(p), 1.0) for p in passes)
    return PASS_WEIGHTS[PassName.RGB] / total


def _estimate(
    spec: SynthDatasetSpec, name: str, attr: str, flag: float | None
) -> tuple[float, Assumption]:
    if flag is not None:
        return flag, Assumption(name, flag, "flag")
    value = float(getattr(spec.estimates, attr))
    given = "estimates" in spec.model_fields_set and attr in spec.estimates.model_fields_set
    return value, Assumption(name, value, "manifest (spec.estimates)" if given else "default")


def _per_view(spec: SynthDatasetSpec, value: float, a: Assumption, kind: str) -> tuple[float, Assumption]:
    """Multi-view (render.views): the manifest's estimates are for one camera, scaled to N views here;
    a flag is a measured figure of the whole sample and is kept as given."""
    from synth_contract import planning

    views, frames = multiview.max_counts(spec)
    if max(views, frames) < 2 or a.source == "flag":
        return value, a
    mix = [(share, c) for share, c in planning.render_mix(spec)
           if max(multiview.view_count(spec, c), multiview.frame_count(spec, c)) > 1]
    if mix and mix[0][1] is not None:  # categories[].render: only their share of the samples pays
        what = "categories[].render (" + ", ".join(
            f"{c}: {share:.0%} of the samples x " + (f"{n} views" if (n := multiview.view_count(spec, c)) > 1
                                                     else f"{multiview.frame_count(spec, c)} frames")
            for share, c in mix) + ")"
    else:
        what = f"render.views.count {views}" if views > 1 else f"render.frames.count {frames}"
    factor = multiview.gpu_factor(spec) if kind == "gpu" else multiview.bytes_factor(spec)
    note = (f"{a.value:g} for one camera x {factor:.2f} for {what}"
            + (f" (each extra view or frame {multiview.EXTRA_VIEW_GPU_SHARE:g} of a still)" if kind == "gpu" else ""))
    return value * factor, Assumption(a.name, value * factor, a.source, note)


def default_spot_share(spec: SynthDatasetSpec) -> float:
    """Share of GPU-hours on spot in the mix the spec asks for."""
    if not spec.node_pool.spot:
        return 0.0
    return 0.8 if spec.node_pool.on_demand_fallback else 1.0


def capacity_plan(
    spec: SynthDatasetSpec, *, inputs: PlanInputs | None = None, now: datetime | None = None
) -> CapacityPlan:
    """The capacity plan of a dataset (see the module docstring); ``now`` enables the deadline figures."""
    inputs = inputs or PlanInputs()
    gpu_s, a_gpu = _estimate(spec, "gpuSecondsPerSample", "gpu_seconds_per_sample", inputs.gpu_seconds_per_sample)
    bps, a_bytes = _estimate(spec, "bytesPerSample", "bytes_per_sample", inputs.bytes_per_sample)
    (gpu_s, a_gpu), (bps, a_bytes) = _per_view(spec, gpu_s, a_gpu, "gpu"), _per_view(spec, bps, a_bytes, "bytes")
    bake_s = 0.0 if a_gpu.source == "flag" else bake_seconds_per_sample(spec)  # a flag is a whole sample
    if bake_s > 0:
        gpu_s += bake_s
        a_gpu = Assumption(a_gpu.name, gpu_s, a_gpu.source, "; ".join(
            x for x in (a_gpu.note, f"+ {bake_s:.3g} s bake of simulations (fluids/effects)") if x))
    if gpu_s <= 0 or bps <= 0:
        raise ValueError("gpu-seconds-per-sample and bytes-per-sample must be > 0")
    busy, a_busy = _busy_ratio(inputs)
    gpu_s /= busy  # the pod holds its GPU while Python works between render calls
    if inputs.spot_share is not None:
        share = inputs.spot_share
        a_share = Assumption("spotShare", share, "flag")
    else:
        share = default_spot_share(spec)
        a_share = Assumption(
            "spotShare", share, "default", "from nodePool.spot and nodePool.onDemandFallback"
        )
    if not 0 <= share <= 1:
        raise ValueError("spot share must be within 0..1")
    rework = DEFAULT_SPOT_REWORK if inputs.spot_rework is None else inputs.spot_rework
    a_rework = Assumption(
        "spotRework", rework, "default" if inputs.spot_rework is None else "flag",
        "fraction of spot GPU time redone after preemptions",
    )
    rgb_share = _split_bytes(spec, 1.0).get("rgb", rgb_fraction(list(spec.render.passes)))
    a_rgb = Assumption(
        "rgbShareOfBytes", rgb_share, "default", "pass size weights: " + ", ".join(
            f"{p}={PASS_WEIGHTS.get(str(p), 1.0):g}" for p in spec.render.passes
        ),
    )

    samples = spec.samples
    shards = -(-samples // spec.shard_size)
    gpu_hours = samples * gpu_s / 3600
    devices = max(1, spec.node_pool.gpus_per_worker)  # a CPU-only worker renders one at a time
    per_worker_day = devices * SECONDS_PER_DAY / gpu_s
    days_max = samples / (spec.workers.max * per_worker_day)
    days_min = samples / (spec.workers.min * per_worker_day) if spec.workers.min > 0 else None

    warnings: list[str] = []
    target = spec.throughput.target_per_day
    workers_for_target = math.ceil(target / per_worker_day - 1e-9) if target else None
    if workers_for_target is not None:
        used = max(spec.workers.min, min(workers_for_target, spec.workers.max))
        if workers_for_target > spec.workers.max:
            warnings.append(
                f"throughput.targetPerDay {target:,} needs {workers_for_target} workers but "
                f"workers.max is {spec.workers.max}: the target is out of reach "
                f"({spec.workers.max * per_worker_day:,.0f} samples/day at most)"
            )
    else:
        used = spec.workers.max
    days = samples / (used * per_worker_day)
    workers_for_deadline = None
    deadline = spec.throughput.deadline
    if deadline is not None and now is not None:
        aware = deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
        days_left = (aware - now).total_seconds() / SECONDS_PER_DAY
        if days_left <= 0:
            warnings.append(f"throughput.deadline {deadline.isoformat()} has passed")
        else:
            workers_for_deadline = math.ceil(samples / (days_left * per_worker_day) - 1e-9)
            if workers_for_deadline > spec.workers.max:
                warnings.append(
                    f"throughput.deadline needs {workers_for_deadline} workers but workers.max is {spec.workers.max}"
                )

    on_demand = gpu_hours * spec.pricing.on_demand_per_gpu_hour
    spot = gpu_hours * (1 + rework) * spec.pricing.spot_per_gpu_hour
    mix = share * spot + (1 - share) * on_demand
    cost = CostPlan(on_demand=on_demand, spot=spot, mix=mix)
    per_sample = CostPlan(on_demand=on_demand / samples, spot=spot / samples, mix=mix / samples)
    budget = spec.budget.max_dollars
    if budget is not None and mix > budget:
        warnings.append(f"budget.maxDollars {budget:,.0f} is below the projected cost of the mix ({mix:,.0f})")

    # The most cameras and frames a sample has (categories[].render may give some categories more).
    views, frames = multiview.max_counts(spec)
    return CapacityPlan(
        samples=samples,
        shards=shards,
        bytes_per_sample=bps,
        bytes_per_sample_rgb_only=bps * rgb_share,
        storage_bytes=samples * bps,
        storage_bytes_rgb_only=samples * bps * rgb_share,
        gpu_seconds_per_sample=gpu_s,
        gpu_hours=gpu_hours,
        samples_per_day_per_worker=per_worker_day,
        days_at_min_workers=days_min,
        days_at_max_workers=days_max,
        target_per_day=target,
        workers_for_target=workers_for_target,
        workers_for_deadline=workers_for_deadline,
        days=days,
        workers_used_for_days=used,
        spot_share=share,
        cost=cost,
        dollars_per_sample=per_sample,
        assumptions=[a_gpu, a_busy, a_bytes, a_share, a_rework, a_rgb],
        warnings=warnings,
        bytes_per_pass=_split_bytes(spec, bps),
        views=views,
        frames=frames,
        bake_seconds_per_sample=bake_s,
    )


def _split_bytes(spec: SynthDatasetSpec, bps: float) -> dict[str, float]:
    from synth_contract.multiview import bytes_weights

    weights = bytes_weights(spec)
    total = sum(weights.values()) or 1.0
    return {k: bps * w / total for k, w in weights.items()}


def human_bytes(n: float) -> str:
    """Decimal units, as storage is billed: 2.5e15 -> '2.50 PB'."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(n) < 1000 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
