"""Spec builders shared by the renderer tests."""

from __future__ import annotations

from typing import Any

from synth_contract.api import SynthDatasetSpec


def tiny_spec_dict(**overrides: Any) -> dict[str, Any]:
    """A spec that renders in a fraction of a second per sample (64x64, 4 spp, 4 samples per shard)."""
    spec: dict[str, Any] = {
        "samples": 8,
        "seed": 11,
        "shardSize": 4,
        "render": {"resolutions": [{"width": 64, "height": 64}], "samples": {"min": 4, "max": 4},
                   "denoise": False, "passes": ["rgb", "depth", "segmentation", "normals"]},
        # 4 spp without the denoiser is noisy by design (fast renders); the gate's noise rule is
        # tested in test_renderer_quality, so it is relaxed here.
        "quality": {"minScore": 0.2, "minPassRate": 0.5, "maxRerenders": 1, "maxNoiseSigma": 0.5},
        "output": {"uri": "file:///tmp/unused"},
        "image": "renderer:test",
    }
    for k, v in overrides.items():
        spec[k] = {**spec[k], **v} if isinstance(v, dict) and isinstance(spec.get(k), dict) else v
    return spec


def tiny_spec(**overrides: Any) -> SynthDatasetSpec:
    return SynthDatasetSpec.model_validate(tiny_spec_dict(**overrides))
