"""One shard attempt: render its samples in order, then commit it or save a checkpoint.

:class:`ShardRun` skips a committed shard, resumes from a verified checkpoint, renders (or, for
``spec.derivedFrom``, copies from the earlier version) the remaining samples with one renderer
for the process, gates the shard on its pass rate, moves failing samples to the quarantine and
commits: tar uploaded first, manifest last. A stop request saves the complete samples as a
checkpoint (``checkpoint`` may be called from another thread, e.g. on SIGTERM).
"""

from __future__ import annotations

import dataclasses
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Literal

from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.exitcodes import EXIT_ERROR, EXIT_OK, EXIT_QUALITY_GATE, EXIT_SIGTERM
from synth_contract.store import Store
from synth_render import checkpoints, derive, pipeline, quarantine, shards
from synth_render.logs import event
from synth_render.manifests import Record, commit, manifest, pass_rate, read_manifest, verify_shard
from synth_render.rendering import Renderer
from synth_render.sample import RenderedSample, SamplePlan, json_bytes, plan_sample, render_sample

Status = Literal["committed", "skipped", "interrupted", "failed"]


class BadConfig(ValueError):
    """A configuration problem that retrying cannot fix (exit code 2)."""


@dataclass
class ShardOutcome:
    """What happened to a shard."""

    status: Status
    shard: int
    samples: int = 0
    """Samples in the committed shard (or saved in the checkpoint when interrupted)."""
    seconds: float = 0.0
    pass_rate: float = 0.0
    render_seconds: float = 0.0
    device: str = ""
    reason: str = ""
    manifest: dict[str, Any] | None = None
    resumed: int = 0
    """Samples taken over from a checkpoint."""

    @property
    def exit_code(self) -> int:
        if self.status in ("committed", "skipped"):
            return EXIT_OK
        if self.status == "interrupted":
            return EXIT_SIGTERM
        return EXIT_QUALITY_GATE if self.reason.startswith("quality") else EXIT_ERROR


@lru_cache(maxsize=2)
def shared_renderer(device: str, engine: str) -> Renderer:
    """One renderer per process and device: the base scene outlives shards."""
    from synth_render.blender.renderer import BlenderRenderer

    return BlenderRenderer(device=device, engine=engine)


@dataclass
class ShardRun:
    """The state of one shard attempt; ``checkpoint`` is safe to call from another thread."""

    spec: SynthDatasetSpec
    dataset: str
    shard: int
    store: Store
    stop: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[dict[str, Any]], None] | None = None
    renderer: Renderer | None = None
    workdir: Path | None = None
    records: list[Record] = field(default_factory=list)
    _writer: shards.ShardWriter | None = None
    _ckpt_lock: threading.Lock = field(default_factory=threading.Lock)
    _committing: bool = False
    _saved: int = 0
    on_renderer: Callable[[], None] | None = None
    """Called once the renderer exists (the entry point re-installs its SIGTERM handler)."""
    depth: int = pipeline.DEPTH
    """Samples in flight in the pipeline (1: one sample at a time, the unpipelined worker)."""
    timings: pipeline.Timings = field(default_factory=pipeline.Timings)
    """The main thread's render-call, other and wait seconds of this attempt."""
    on_timings: Callable[[pipeline.Timings], None] | None = None
    """Called with ``timings`` after each sample and at the end (the worker's Prometheus gauges)."""

    def checkpoint(self) -> int | None:
        """Save the complete samples so far to the store; returns how many are saved.

        None when the attempt is already finishing (committing, or its files are gone).
        """
        with self._ckpt_lock:
            writer = self._writer
            if writer is None or self._committing:
                return None
            if writer.samples == 0:
                return 0
            if writer.samples == self._saved:
                return self._saved
            self._saved = checkpoints.save(self.store, self.spec, self.shard, writer, self.records)
            return self._saved

    # ------------------------------------------------------------------ the run

    def run(self) -> ShardOutcome:
        t0 = time.perf_counter()
        try:
            indices = planning.shard_range(self.spec, self.shard)
        except IndexError as exc:
            raise BadConfig(str(exc)) from exc
        existing = read_manifest(self.store, self.shard)
        if existing is not None and not verify_shard(self.store, self.shard):
            event("shard already committed", shard=self.shard, samples=existing.get("samples"))
            return ShardOutcome("skipped", self.shard, samples=int(existing.get("samples", 0)),
                                seconds=time.perf_counter() - t0,
                                pass_rate=float(existing.get("quality", {}).get("passRate", 1.0)),
                                device=str(existing.get("device", "")), manifest=existing)
        if self.store.exists(layout.manifest_path(self.shard)):
            event("manifest invalid, re-rendering", shard=self.shard,
                  problems=verify_shard(self.store, self.shard))
        keys = [planning.sample_key(i) for i in indices]
        with tempfile.TemporaryDirectory(prefix=f"shard-{self.shard:08d}-", dir=self.workdir) as td:
            tmp = Path(td)
            writer = shards.ShardWriter(tmp / "shard.tar")
            try:
                self.records.extend(checkpoints.resume(self.store, self.spec, self.shard, writer, keys, tmp))
                resumed = len(self.records)
                self._writer = writer
                return self._render_rest(indices, writer, resumed, tmp, t0)
            finally:
                with self._ckpt_lock:
                    self._writer = None
                writer.close()

    def _render_rest(self, indices: range, writer: shards.ShardWriter, resumed: int, tmp: Path,
                     t0: float) -> ShardOutcome:
        old = None  # spec.derivedFrom: the earlier version's shard, read alongside
        if self.spec.derived_from is not None:
            old = derive.OldShard(self.spec, derive.sibling_store(self.store, self.spec.version,
                                                                  self.spec.derived_from.version), self.shard, tmp)
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        proxy = pipeline.MainThreadRenderer(self._make_renderer, inbox)

        def tasks() -> Iterator[pipeline.Task]:
            for index in indices[resumed:]:  # planned in order on the main thread (the old shard streams)
                plan = plan_sample(self.spec, index)
                copied, old_score = self._copied(old, plan) if old is not None else (None, None)
                yield pipeline.Task(work=partial(self._sample, plan, copied, old_score, proxy),
                                    commit=partial(self._commit, writer, plan, len(indices)))

        try:
            pipeline.run(tasks(), proxy, inbox, stop=self.stop, timings=self.timings, depth=self.depth)
        finally:
            if self.on_timings is not None:
                self.on_timings(self.timings)
        renderer = self.renderer
        device = renderer.device if proxy.real is not None and renderer is not None else ""
        if writer.samples < len(indices):
            saved = self.checkpoint() or 0
            return ShardOutcome("interrupted", self.shard, samples=saved, seconds=time.perf_counter() - t0,
                                pass_rate=pass_rate(self.records), device=device, resumed=resumed,
                                reason="stop requested")
        rate = pass_rate(self.records)
        if rate < self.spec.quality.min_pass_rate:
            event("quality gate failed", shard=self.shard, passRate=rate,
                  minPassRate=self.spec.quality.min_pass_rate)
            return ShardOutcome("failed", self.shard, samples=writer.samples, seconds=time.perf_counter() - t0,
                                pass_rate=rate, device=device, resumed=resumed,
                                reason=f"quality: pass rate {rate:.3f} < minPassRate "
                                       f"{self.spec.quality.min_pass_rate}")
        with self._ckpt_lock:
            self._committing = True
        committed = read_manifest(self.store, self.shard)
        if committed is not None and not verify_shard(self.store, self.shard):
            # Committed meanwhile by another pod: this one was replaced (a partitioned node's zombie)
            # and must not commit the shard a second time over the other's.
            event("shard committed by another pod, not overwritten", shard=self.shard,
                  samples=committed.get("samples"))
            return ShardOutcome("skipped", self.shard, samples=int(committed.get("samples", 0)),
                                seconds=time.perf_counter() - t0, pass_rate=rate, device=device,
                                manifest=committed, resumed=resumed)
        size, digest = writer.finish()
        tar_path, held = writer.path, [r for r in self.records if not r.passed]
        staged: list[tuple[str, Path | bytes]] = []  # committed in this order, the manifest last (manifests.commit)
        if held:  # quarantine: failing samples leave the training shard, on record before the commit
            split = quarantine.split_tar(writer.path, [r.key for r in held], tmp / "kept.tar", tmp / "held.tar")
            entries = [{"key": r.key, "index": r.index, "category": r.category, "score": r.score,
                        "attempts": r.attempts, "reasons": list(r.quality.get("reasons") or []),
                        "quality": r.quality} for r in held]
            staged += [(layout.quarantine_path(self.shard), tmp / "held.tar"),
                       (layout.quarantine_list_path(self.shard), json_bytes(
                           quarantine.quarantine_doc(self.dataset, self.spec.version, self.shard, entries, split)))]
            tar_path, size, digest = tmp / "kept.tar", split.kept_bytes, split.kept_sha256
            event("samples quarantined", shard=self.shard, samples=len(held),
                  reasons=sorted({str(x) for r in held for x in (r.quality.get("reasons") or [])})[:5])
        doc = manifest(self.spec, self.dataset, self.shard, self.records, indices=indices, size=size, digest=digest,
                       device=device or getattr(renderer, "device", ""),
                       engine_version=getattr(renderer, "engine_version", ""), t0=t0, resumed=resumed)
        doc["timings"].update(self.timings.as_json())  # where the main thread's time went (pipeline)
        part, doc["indexPart"] = shards.index_part(tar_path, self.shard)
        staged += [(layout.shard_path(self.shard), tar_path), (layout.index_part_path(self.shard), part)]
        done = commit(self.store, self.shard, staged, doc)
        if done.status == "already":  # another writer won the fenced commit: its files are left alone
            return ShardOutcome("skipped", self.shard, samples=int(done.manifest.get("samples", 0)),
                                seconds=time.perf_counter() - t0, pass_rate=rate, device=device,
                                manifest=done.manifest, resumed=resumed)
        doc = done.manifest
        self.store.delete(layout.checkpoint_meta_path(self.shard))
        self.store.delete(layout.checkpoint_path(self.shard))
        event("shard committed", shard=self.shard, samples=doc["samples"], bytes=size, sha256=digest,
              passRate=rate, quarantined=len(held), seconds=round(time.perf_counter() - t0, 3),
              renderBusyRatio=round(self.timings.busy_ratio, 4))
        return ShardOutcome("committed", self.shard, samples=doc["samples"], seconds=time.perf_counter() - t0,
                            pass_rate=rate, render_seconds=doc["timings"]["renderSeconds"],
                            device=doc["device"], manifest=doc, resumed=resumed)

    def _make_renderer(self) -> Renderer:
        """The process's renderer (created on the main thread at the first render)."""
        if self.renderer is None:
            self.renderer = shared_renderer(str(self.spec.render.device), str(self.spec.render.engine))
            if self.on_renderer is not None:
                self.on_renderer()
        return self.renderer

    def _sample(self, plan: SamplePlan, copied: RenderedSample | None, old_score: float | None,
                renderer: Renderer) -> tuple[RenderedSample, float]:
        """A pipeline stage off the main thread: the sample's scene, render (on the main thread) and files."""
        ts = time.perf_counter()
        sample = copied
        if sample is None:
            sample = render_sample(self.spec, plan, renderer, dataset=self.dataset)
            if self.spec.derived_from is not None:
                files, meta = derive.rerendered(sample.files, sample.meta, old_version=self.spec.derived_from.version,
                                                old_score=old_score)
                sample = dataclasses.replace(sample, files=files, meta=meta)
        return sample, time.perf_counter() - ts

    def _commit(self, writer: shards.ShardWriter, plan: SamplePlan, of: int,
                result: tuple[RenderedSample, float]) -> None:
        """Append a finished sample to the shard (in index order) and report it."""
        sample, seconds = result
        record = Record(sample.key, plan.category, sample.score, sample.passed, sample.attempts, round(seconds, 4),
                        quality=sample.meta["quality"], index=plan.index)
        with self._ckpt_lock:  # a checkpoint from another thread sees whole samples and their records
            writer.add(sample.key, sample.files)
            self.records.append(record)
            done = writer.samples
        # A simulated sample's bake (seconds, cacheHit): wall clock stays out of the sample JSON.
        sim_fields: dict[str, Any] = {"simulation": sample.simulation} if sample.simulation else {}
        event("sample", shard=self.shard, index=plan.index, key=sample.key, category=plan.category,
              score=sample.score, passed=sample.passed, attempts=sample.attempts, seconds=round(seconds, 4),
              renderSeconds=round(sample.render_seconds, 4), done=done, of=of, **sim_fields)
        if self.progress is not None:
            self.progress({"index": plan.index, "key": sample.key, "category": plan.category, "score": sample.score,
                           "passed": sample.passed, "attempts": sample.attempts, "seconds": seconds,
                           "renderSeconds": sample.render_seconds, "shard": self.shard})
        if self.on_timings is not None:
            self.on_timings(self.timings)

    def _copied(self, old: derive.OldShard, plan: Any) -> tuple[RenderedSample | None, float | None]:
        """The earlier version's sample when it is good enough to keep (derivedFrom), else None."""
        files, score = old.take(plan.key, plan.category)
        if files is None:
            return None, score
        files, meta = derive.copied(files, version=self.spec.version, old_version=old.version)
        q = meta.get("quality") or {}
        return RenderedSample(key=plan.key, files=files, meta=meta, score=float(q.get("score") or 0.0),
                              passed=True, attempts=int(q.get("attempts") or 1), render_seconds=0.0), score
