"""Helpers of the index tests: datasets committed by the real worker (``ShardRun``, the real commit)
with the fake renderer.

``committed`` renders and commits shards in-process in milliseconds each, so the index tests see
the same manifests, tars and index parts a cluster would write, without Blender.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "renderer"))

import builders
from fake_renderer import FakeRenderer

from synth_contract import planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import Store

SPEC: dict[str, Any] = {
    "samples": 12, "seed": 7, "shardSize": 4, "image": "renderer:test",
    "render": {"resolutions": [{"width": 32, "height": 32}], "samples": {"min": 1, "max": 1}, "denoise": False,
               "passes": ["rgb", "depth", "segmentation"]},
    "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0},
    "categories": [{"name": "vehicles", "weight": 1}, {"name": "characters", "weight": 1},
                   {"name": "motion", "weight": 1}],
}
"""Three shards of four 32 px samples over three categories (placed upright: no physics settling to wait for)."""

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_spec(root: Path | str, **fields: Any) -> SynthDatasetSpec:
    uri = root if isinstance(root, str) else root.as_uri()
    return builders.spec(SPEC, output={"uri": uri}, **fields)


def commit_shards(spec: SynthDatasetSpec, store: Store, shards: range | list[int] | None = None,
                  *, dataset: str = "ds") -> None:
    from synth_render.worker import run_shard

    for shard in shards if shards is not None else range(planning.shard_count(spec)):
        out = run_shard(spec, dataset, shard, store=store, renderer=FakeRenderer())
        assert out.status == "committed", out
