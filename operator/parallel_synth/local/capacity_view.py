"""How ``synthctl plan`` prints a capacity plan for people (a rich table; plain text in pipes)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from parallel_synth.local.capacity import CapacityPlan, human_bytes
from synth_contract.api import SynthDatasetSpec


def _days(d: float | None) -> str:
    if d is None:
        return "-"
    return f"{d:,.1f} days" if d >= 1 else f"{d * 24:,.1f} hours"


def render_plan(name: str, spec: SynthDatasetSpec, p: CapacityPlan, *, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    passes = ", ".join(str(x) for x in spec.render.passes)
    t = Table(title=f"capacity plan: {name} ({p.samples:,} samples, {p.shards:,} shards)", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_column(style="dim")
    t.add_row("storage per sample", human_bytes(p.bytes_per_sample), f"all passes ({passes}) *")
    t.add_row("", human_bytes(p.bytes_per_sample_rgb_only), "rgb only *")
    for name, b in p.bytes_per_pass.items():
        t.add_row(f"  {name}", human_bytes(b), f"{human_bytes(b * p.samples)} in total *")
    t.add_row("storage total", human_bytes(p.storage_bytes), "all passes")
    t.add_row("", human_bytes(p.storage_bytes_rgb_only), "rgb only")
    t.add_row("GPU time per sample", f"{p.gpu_seconds_per_sample:g} s", "*")
    if p.bake_seconds_per_sample > 0:
        t.add_row("  bake of simulations", f"{p.bake_seconds_per_sample:.3g} s",
                  "included above: fluids/effects simulations, tier-1 medians *")
    t.add_row("GPU-hours", f"{p.gpu_hours:,.0f}", "")
    t.add_row("per worker", f"{p.samples_per_day_per_worker:,.0f} samples/day",
              f"{max(1, spec.node_pool.gpus_per_worker)} GPU(s) per worker")
    if p.days_at_min_workers is not None:
        t.add_row(f"wall time at workers.min={spec.workers.min}", _days(p.days_at_min_workers), "")
    t.add_row(f"wall time at workers.max={spec.workers.max}", _days(p.days_at_max_workers), "")
    if p.target_per_day:
        t.add_row("workers for the target", f"{p.workers_for_target:,}", f"targetPerDay {p.target_per_day:,}")
    if p.workers_for_deadline is not None:
        t.add_row("workers for the deadline", f"{p.workers_for_deadline:,}", str(spec.throughput.deadline))
    t.add_row("planned wall time", _days(p.days), f"at {p.workers_used_for_days} workers")
    t.add_row("cost on-demand", f"${p.cost.on_demand:,.0f}",
              f"${spec.pricing.on_demand_per_gpu_hour:g}/GPU-h, ${p.dollars_per_sample.on_demand * 1000:,.3f}/1k samples")
    t.add_row("cost spot", f"${p.cost.spot:,.0f}",
              f"${spec.pricing.spot_per_gpu_hour:g}/GPU-h + rework *, ${p.dollars_per_sample.spot * 1000:,.3f}/1k")
    t.add_row("cost mix", f"${p.cost.mix:,.0f}",
              f"{p.spot_share:.0%} spot *, ${p.dollars_per_sample.mix * 1000:,.3f}/1k samples")
    t.add_row("$ per sample", f"${p.dollars_per_sample.mix:.6f}", "mix")
    if spec.budget.max_dollars is not None:
        t.add_row("budget", f"${spec.budget.max_dollars:,.0f}", "")
    console.print(t)
    console.print("* assumptions (not measured yet):")
    for a in p.assumptions:
        note = f" ({a.note})" if a.note else ""
        console.print(f"  {a.name} = {a.value:g}  [from {a.source}]{note}", markup=False)
    for w in p.warnings:
        console.print(f"warning: {w}", style="yellow", markup=False)
