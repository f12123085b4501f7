"""Helpers of the scaling tests: small specs built from the wire form, as users write them.

No conftest.py here on purpose: tests/operator imports its own with ``from conftest import``,
and a second module named ``conftest`` would shadow it when both folders run together.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from synth_contract.api import SynthDatasetSpec

FAST_OPERATOR_ENV = {
    "SYNTH_OPERATOR_DATASET_INTERVAL": "0.25",
    "SYNTH_OPERATOR_BATCH_INTERVAL": "0.2",
    "SYNTH_OPERATOR_INITIAL_DELAY": "0.05",
    "SYNTH_OPERATOR_RETRY_BACKOFF_SECONDS": "0.3",
    "SYNTH_OPERATOR_CLUSTER_SCANNING": "false",
}
"""Operator settings for tests: fast ticks (read once when parallel_synth.handlers is imported)."""


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
        "categories": [{"name": "geometry"}],  # no simulations: GPU time is estimates x samples exactly
    }
    wire.update(overrides)
    return SynthDatasetSpec.model_validate(wire)


# Operator settings are read once when parallel_synth.handlers is imported (by kopf, after the
# test modules): make ticks fast. The KMock helpers of tests/operator are reused.
for _k, _v in FAST_OPERATOR_ENV.items():
    os.environ.setdefault(_k, _v)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))
