"""Prometheus metrics of a render pod: how much of its main thread's time Blender's render call gets.

A fleet is paid per GPU-hour; the render call is what uses the GPU. ``render_busy_ratio`` is the
share of the worker's main-thread time spent inside Cycles' render calls over the current shard
(``pipeline.Timings``); ``render_main_thread_seconds{kind}`` splits that time into ``render``,
``other`` (scene build, EXR read-back, ground-truth renders) and ``wait`` (idle, waiting for the
pipeline). The same figures land in the shard manifest's ``timings`` when the shard commits.

``serve`` starts the exposition endpoint on ``$SYNTH_METRICS_PORT`` (unset: no endpoint, the
manifest still carries the figures).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from synth_render.pipeline import Timings

PORT_ENV = "SYNTH_METRICS_PORT"


class WorkerMetrics:
    """The render pod's gauges, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["dataset", "shard"]
        self.busy = Gauge("render_busy_ratio", "Share of the worker main thread's time inside Cycles' render "
                          "calls over the current shard (target >= 0.93).", labels, registry=self.registry)
        self.seconds = Gauge("render_main_thread_seconds", "The worker main thread's seconds over the current "
                             "shard: render (Cycles' render calls), other (scene build, read-back, ground-truth "
                             "renders), wait (idle, waiting for the pipeline).", [*labels, "kind"],
                             registry=self.registry)

    def update(self, dataset: str, shard: int, timings: Timings) -> None:
        s = str(shard)
        self.busy.labels(dataset, s).set(timings.busy_ratio)
        for kind in ("render", "other", "wait"):
            self.seconds.labels(dataset, s, kind).set(getattr(timings, kind))


def serve(environ: dict[str, str] | None = None) -> WorkerMetrics | None:
    """Metrics served on ``$SYNTH_METRICS_PORT`` (None when unset); ValueError for a bad port."""
    env = os.environ if environ is None else environ
    raw = env.get(PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"${PORT_ENV} must be a TCP port (1-65535), got {raw!r}")
    metrics = WorkerMetrics()
    start_http_server(int(raw), registry=metrics.registry)
    return metrics
