"""One of two writers racing to commit the same shard: ``python race_writer.py ROOT SHARD BARRIER AT``.

A real worker process (``ShardRun`` with the fake renderer of ``tests/renderer``, the real commit
code of ``synth_render.manifests.commit``) whose store waits, at the conditional create of file
``AT`` (``tar``, ``part`` or ``manifest``; ``none``: no wait), until the other writer is at the same
point: both then issue the create in the same instant. The spec comes from ``$SYNTH_SPEC_JSON``.
Prints one JSON line (``status``, ``exit``) and exits with the worker's exit code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "renderer"))

from fake_renderer import FakeRenderer

from synth_contract import layout
from synth_contract.store import Store, open_store
from synth_contract.validation import spec_from_json
from synth_render.shard_run import ShardRun

TARGETS = {"tar": layout.shard_path, "part": layout.index_part_path, "manifest": layout.manifest_path}


class BarrierStore:
    """The store, except that the conditional create of one path first waits for the other writer."""

    def __init__(self, store: Store, path: str | None, barrier: Path) -> None:
        self._store, self._path, self._barrier = store, path, barrier
        self.uri = store.uri

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _meet(self, path: str) -> None:
        if path != self._path:
            return
        self._barrier.mkdir(parents=True, exist_ok=True)
        (self._barrier / str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while len(list(self._barrier.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)

    def create_file(self, path: str, local: Path) -> bool:
        self._meet(path)
        return self._store.create_file(path, local)

    def create_bytes(self, path: str, data: bytes) -> bool:
        self._meet(path)
        return self._store.create_bytes(path, data)


def main() -> None:
    root, shard, barrier, at = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    spec = spec_from_json(os.environ["SYNTH_SPEC_JSON"])
    target = TARGETS[at](shard) if at in TARGETS else None
    store: Any = BarrierStore(open_store(root), target, barrier)
    out = ShardRun(spec=spec, dataset="race", shard=shard, store=store, renderer=FakeRenderer()).run()
    print(json.dumps({"status": out.status, "exit": out.exit_code, "pid": os.getpid()}), flush=True)
    sys.exit(out.exit_code)


if __name__ == "__main__":
    main()
