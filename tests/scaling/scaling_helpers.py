"""Helpers of the scaling tests: small specs built from the wire form, as users write them."""

from __future__ import annotations

from typing import Any

from parallel_synth.api import SynthDatasetSpec


def make_spec(**overrides: Any) -> SynthDatasetSpec:
    """A small dataset spec; keyword arguments override top-level wire fields (camelCase)."""
    wire: dict[str, Any] = {
        "samples": 400_000,
        "shardSize": 100,
        "output": {"uri": "s3://bucket/prefix"},
        "image": "renderer:test",
        "throughput": {"targetPerDay": 200_000},
        "workers": {"min": 1, "max": 50},
        "estimates": {"gpuSecondsPerSample": 10},
        "pricing": {"spotPerGpuHour": 0.3, "onDemandPerGpuHour": 1.0},
        "nodePool": {"spot": True, "onDemandFallback": True},
    }
    wire.update(overrides)
    return SynthDatasetSpec.model_validate(wire)
