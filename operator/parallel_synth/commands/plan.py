"""``synthctl plan``: the capacity plan of a manifest (storage, GPU-hours, cost, workers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from parallel_synth.commands.common import FiniteFloat
from synth_contract.planning import IndexStep, index_step
from synth_contract.validation import load_dataset


@click.command("plan")
@click.argument("manifest", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--gpu-seconds-per-sample", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Render time of one sample on one GPU (default: spec.estimates, else 60).")
@click.option("--bytes-per-sample", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Stored bytes per sample with all passes (default: spec.estimates, else 5e6).")
@click.option("--spot-share", type=FiniteFloat(0, 1), default=None,
              help="Share of GPU-hours on spot in the mix (default: 0.8 with on-demand fallback, "
                   "1 spot only, 0 without spot).")
@click.option("--spot-rework", type=FiniteFloat(0, 1), default=None,
              help="Fraction of spot GPU time redone after preemptions (default 0.03).")
@click.option("--render-busy-ratio", type=FiniteFloat(0, 1, min_open=True), default=None,
              help="Share of a pod's time inside Blender's render call; GPU time per sample is the render time "
                   "over it (default: the object's measured status.renderBusyRatio, else 1).")
@click.option("--index-bandwidth", type=FiniteFloat(min=1e3, max=1e13), default=1e9, show_default=True,
              help="Bytes/s the index step reads the bucket at (its time is the slower of reading and summarising).")
def plan(manifest: str, as_json: bool, gpu_seconds_per_sample: float | None, bytes_per_sample: float | None,
         spot_share: float | None, spot_rework: float | None, render_busy_ratio: float | None,
         index_bandwidth: float) -> None:
    """Capacity plan: storage, GPU-hours, wall time, cost and the workers the target needs.

    \b
    Exit codes: 0 planned; 1 the manifest has problems (or cannot be planned);
    2 wrong usage or unreadable manifest.
    """
    from parallel_synth.local.capacity import PlanInputs, capacity_plan

    obj = load_dataset(manifest)
    try:
        result = capacity_plan(obj.spec, inputs=PlanInputs(
            gpu_seconds_per_sample=gpu_seconds_per_sample, bytes_per_sample=bytes_per_sample,
            spot_share=spot_share, spot_rework=spot_rework, render_busy_ratio=render_busy_ratio,
            measured_busy_ratio=measured_busy_ratio(obj.status),
        ), now=datetime.now(UTC))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    step = index_step(obj.spec, bytes_per_sample=result.bytes_per_sample, bandwidth=index_bandwidth)
    if as_json:
        click.echo(json.dumps({"dataset": obj.metadata.name, **result.to_json(), "indexStep": step.to_json()},
                              indent=2))
        return
    from parallel_synth.local.capacity_view import render_plan

    render_plan(obj.metadata.name, obj.spec, result)
    click.echo(index_step_line(step))


def measured_busy_ratio(status: dict[str, Any] | None) -> float | None:
    """``status.renderBusyRatio`` of the object planned (e.g. ``kubectl get sds NAME -o yaml | synthctl plan -``)
    when it holds a sound one, else None."""
    value = (status or {}).get("renderBusyRatio") if isinstance(status, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1:
        return float(value)
    return None


def index_step_line(step: IndexStep) -> str:
    """One line on the index step: what it reads (parts, not tars), how long, and what the index stores."""
    from parallel_synth.local.capacity import human_bytes

    def dur(s: float) -> str:
        return f"{s / 86400:.1f} days" if s >= 86400 else f"{s / 3600:.1f} h" if s >= 3600 else f"{s:.0f} s"

    return (f"index step: reads {human_bytes(step.bytes_read)} ({step.bytes_read / max(step.samples, 1):,.0f} B/sample, "
            f"index parts) in {dur(step.seconds)} at {human_bytes(step.bandwidth)}/s and "
            f"{step.samples_per_second:,.0f} samples/s; the index stores {human_bytes(step.storage_bytes)} "
            f"({step.layout}); streaming every tar instead: {human_bytes(step.bytes_read_old)}, {dur(step.seconds_old)}")
