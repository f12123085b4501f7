"""The container entry point ``synth-render`` with the fake renderer: ``python fake_worker.py --dataset ...``.

Every render takes ``$FAKE_RENDER_SECONDS`` (default 0.2) so that a SIGTERM lands mid-shard.
"""

from __future__ import annotations

import os

from fake_renderer import FakeRenderer

from synth_render import shard_run, worker


def _fake(device: str, engine: str) -> FakeRenderer:
    return FakeRenderer(seconds=float(os.environ.get("FAKE_RENDER_SECONDS", "0.2")))


if __name__ == "__main__":
    shard_run.shared_renderer = _fake  # type: ignore[assignment]
    worker.main()
