"""The pipelined worker: same bytes as one sample at a time, main-thread timings, failures, metrics.

The fake renderer (``fake_renderer.py``) stands in for Blender; ``pipeline.run`` itself is driven
with plain callables where the order and the failure paths are what is tested.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

import builders
import pytest
from builders import RENDER
from fake_renderer import FakeRenderer
from prometheus_client import generate_latest

from synth_contract import layout
from synth_contract.store import open_store
from synth_render import pipeline
from synth_render.metrics import WorkerMetrics, serve
from synth_render.worker import run_shard


class _MainThreadOnly(FakeRenderer):
    """A fake renderer that fails unless called on the main thread (where bpy must be used)."""

    def render(self, *args: Any, **kwargs: Any) -> Any:
        assert threading.current_thread() is threading.main_thread(), "render called off the main thread"
        return super().render(*args, **kwargs)


class _FailsAt(FakeRenderer):
    def __init__(self, nth: int) -> None:
        super().__init__()
        self.nth = nth

    def render(self, *args: Any, **kwargs: Any) -> Any:
        if len(self.calls) == self.nth:
            self.calls.append(-1)
            raise RuntimeError("device lost")
        return super().render(*args, **kwargs)


def test_the_pipelined_shard_is_byte_identical_to_one_sample_at_a_time(tmp_path: Path) -> None:
    spec = builders.spec(RENDER, samples=16, shardSize=8)
    serial = run_shard(spec, "ds", 1, store=open_store((tmp_path / "a").as_uri()), renderer=FakeRenderer(), depth=1)
    piped = run_shard(spec, "ds", 1, store=open_store((tmp_path / "b").as_uri()), renderer=_MainThreadOnly(seconds=0.01))
    assert serial.manifest is not None and piped.manifest is not None
    assert piped.status == "committed" and piped.manifest["sha256"] == serial.manifest["sha256"]
    assert (tmp_path / "a/shards/00000001.tar").read_bytes() == (tmp_path / "b/shards/00000001.tar").read_bytes()


def test_the_manifest_says_where_the_main_threads_time_went(tmp_path: Path) -> None:
    spec = builders.spec(RENDER, samples=16, shardSize=8)
    store = open_store(tmp_path.as_uri())
    out = run_shard(spec, "ds", 0, store=store, renderer=FakeRenderer(seconds=0.02))
    assert out.manifest is not None
    t = json.loads(store.read_bytes(layout.manifest_path(0)) or b"{}")["timings"]
    assert {"renderCallSeconds", "mainThreadOtherSeconds", "pipelineWaitSeconds", "renderBusyRatio"} <= set(t)
    # The fake's render call reports 0.01 s per frame; it sleeps 0.02 s (the rest is "other").
    assert t["renderCallSeconds"] == pytest.approx(8 * 0.01, abs=0.005)
    assert t["mainThreadOtherSeconds"] >= 8 * 0.009
    total = t["renderCallSeconds"] + t["mainThreadOtherSeconds"] + t["pipelineWaitSeconds"]
    assert t["renderBusyRatio"] == pytest.approx(t["renderCallSeconds"] / total, abs=1e-3)
    assert 0.0 < t["renderBusyRatio"] < 1.0
    assert t["totalSeconds"] >= total - 0.05


@pytest.mark.parametrize("nth", [0, 3, 7])
def test_a_render_failure_fails_the_shard_without_committing_or_hanging(tmp_path: Path, nth: int) -> None:
    spec = builders.spec(RENDER, samples=16, shardSize=8)
    store = open_store(tmp_path.as_uri())
    with pytest.raises(RuntimeError, match="device lost"):
        run_shard(spec, "ds", 1, store=store, renderer=_FailsAt(nth))
    assert not store.exists(layout.manifest_path(1)) and not store.exists(layout.shard_path(1))


def test_an_encoder_failure_of_one_sample_is_raised_after_the_samples_in_flight_end() -> None:
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    proxy = pipeline.MainThreadRenderer(FakeRenderer, inbox)
    committed: list[int] = []

    def work(i: int) -> int:
        if i == 2:
            raise OSError(28, "No space left on device")
        return i

    tasks = iter([pipeline.Task(work=lambda i=i: work(i), commit=committed.append) for i in range(6)])
    with pytest.raises(OSError, match="No space left"):
        pipeline.run(tasks, proxy, inbox, stop=threading.Event(), timings=pipeline.Timings())
    assert committed == [0, 1]  # in order, and nothing after the failed sample


def test_commits_happen_in_index_order_whatever_order_the_work_ends_in() -> None:
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    proxy = pipeline.MainThreadRenderer(FakeRenderer, inbox)
    gates = [threading.Event() for _ in range(5)]
    committed: list[int] = []

    def work(i: int) -> int:
        if i + 1 < len(gates):
            gates[i + 1].set()  # the next sample may end first ...
        if i > 0:
            gates[i].wait(5)
        return i

    tasks = iter([pipeline.Task(work=lambda i=i: work(i), commit=committed.append) for i in range(5)])
    pipeline.run(tasks, proxy, inbox, stop=threading.Event(), timings=pipeline.Timings(), depth=3)
    assert committed == [0, 1, 2, 3, 4]


def test_render_busy_ratio_is_exposed_for_prometheus() -> None:
    m = WorkerMetrics()
    m.update("ds", 3, pipeline.Timings(render=9.0, other=0.5, wait=0.5))
    text = generate_latest(m.registry).decode()
    assert 'render_busy_ratio{dataset="ds",shard="3"} 0.9' in text
    assert 'render_main_thread_seconds{dataset="ds",kind="wait",shard="3"} 0.5' in text


@pytest.mark.parametrize("port", ["http", "0", "70000", "-1"])
def test_a_bad_metrics_port_is_named(port: str) -> None:
    with pytest.raises(ValueError, match="SYNTH_METRICS_PORT"):
        serve({"SYNTH_METRICS_PORT": port})
    assert serve({}) is None
