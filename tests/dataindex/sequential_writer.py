"""A run to kill half-way: ``python sequential_writer.py ROOT`` commits shard after shard with the real worker.

Each render takes ``$FAKE_RENDER_SECONDS`` (the fake renderer), so a test can SIGKILL it at any point:
between samples, during a commit, between a shard's index part and its manifest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "renderer"))

from fake_renderer import FakeRenderer

from synth_contract import planning
from synth_contract.store import open_store
from synth_contract.validation import spec_from_json
from synth_render.worker import run_shard

if __name__ == "__main__":
    spec = spec_from_json(os.environ["SYNTH_SPEC_JSON"])
    store = open_store(sys.argv[1])
    fake = FakeRenderer(seconds=float(os.environ.get("FAKE_RENDER_SECONDS", "0.02")))
    for shard in range(planning.shard_count(spec)):
        run_shard(spec, "ds", shard, store=store, renderer=fake)
