"""The shard worker: render one shard in one long-lived Blender process and commit it.

``run_shard`` is the Python API (local mode calls it in long-lived pool processes); ``main``
is the container entry point ``synth-render`` (one shard per pod: ``--shard-start`` plus
``$JOB_COMPLETION_INDEX``). The commit protocol follows DESIGN.md: the tar is streamed to
local disk, uploaded, and the shard manifest is written last as the commit marker. A shard
with a manifest is skipped. A stop request (SIGTERM, or ``stop`` set by local mode) saves the
complete samples as a checkpoint; the next attempt verifies and resumes from it.

Exit codes: 0 committed or already committed, 2 bad configuration, 3 quality gate failed,
143 stopped by SIGTERM after a checkpoint, 1 any other render or upload error.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.store import Store, open_store
from synth_contract.validation import spec_from_json
from synth_render import derive, quarantine, shards
from synth_render.logs import event, setup_json_logging
from synth_render.provenance import image_provenance
from synth_render.rendering import Renderer
from synth_render.sample import RenderedSample, json_bytes, plan_sample, render_sample

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_QUALITY, EXIT_SIGTERM = 0, 1, 2, 3, 143
MANIFEST_SCHEMA = "parallel-synth/shard-manifest/v1"
CHECKPOINT_SCHEMA = "parallel-synth/shard-checkpoint/v1"
SIGTERM_GRACE_SECONDS = 5.0
"""After SIGTERM, how long the current sample may take before it is abandoned
(``$SYNTH_SIGTERM_GRACE_SECONDS`` overrides it; keep it well under the pod's grace period)."""

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
        return EXIT_QUALITY if self.reason.startswith("quality") else EXIT_ERROR


def spec_digest(spec: SynthDatasetSpec) -> str:
    """Digest of the spec fields that decide sample content (a checkpoint must match them)."""
    w = spec.wire()
    keep = {k: w.get(k) for k in ("samples", "seed", "version", "shardSize", "categories", "render", "quality")}
    for extra in ("schedule", "derivedFrom"):  # only when set: checkpoints of datasets without stay valid
        if w.get(extra):
            keep[extra] = w[extra]
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def checkpoint_meta_path(shard: int) -> str:
    return layout.checkpoint_path(shard).removesuffix(".tar") + ".json"


@lru_cache(maxsize=2)
def shared_renderer(device: str, engine: str) -> Renderer:
    """One renderer per process and device: the base scene outlives shards."""
    from synth_render.blender.renderer import BlenderRenderer

    return BlenderRenderer(device=device, engine=engine)


def read_manifest(store: Store, shard: int) -> dict[str, Any] | None:
    """The shard's manifest when it exists and is well-formed, else None."""
    raw = store.read_bytes(layout.manifest_path(shard))
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("shard") != shard or not isinstance(doc.get("sha256"), str):
        return None
    return doc


def verify_shard(store: Store, shard: int, *, deep: bool = False) -> list[str]:
    """Problems with a committed shard (empty when fine); ``deep`` re-hashes the tar."""
    raw = store.read_bytes(layout.manifest_path(shard))
    if raw is None:
        return [f"shard {shard}: manifest {layout.manifest_path(shard)} is missing"]
    doc = read_manifest(store, shard)
    if doc is None:
        return [f"shard {shard}: manifest is corrupt (not JSON or missing shard/sha256)"]
    size = store.size(layout.shard_path(shard))
    if size is None:
        return [f"shard {shard}: tar {layout.shard_path(shard)} is missing"]
    problems = []
    if size != doc.get("bytes"):
        problems.append(f"shard {shard}: tar has {size} bytes, manifest says {doc.get('bytes')}")
    if deep:
        data = store.read_bytes(layout.shard_path(shard)) or b""
        if hashlib.sha256(data).hexdigest() != doc["sha256"]:
            problems.append(f"shard {shard}: tar sha256 does not match the manifest")
        else:
            n = sum(1 for _ in shards.read_samples(data))
            if n != doc.get("samples"):
                problems.append(f"shard {shard}: tar has {n} samples, manifest says {doc.get('samples')}")
    return problems


@dataclass
class _Record:
    key: str
    category: str
    score: float
    passed: bool
    attempts: int
    seconds: float
    quality: dict[str, Any] = field(default_factory=dict)
    index: int = -1


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
    records: list[_Record] = field(default_factory=list)
    _writer: shards.ShardWriter | None = None
    _ckpt_lock: threading.Lock = field(default_factory=threading.Lock)
    _committing: bool = False
    _saved: int = 0
    on_renderer: Callable[[], None] | None = None
    """Called once the renderer exists (the entry point re-installs its SIGTERM handler)."""

    # ------------------------------------------------------------------ checkpoints

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
            local = writer.path.with_suffix(".ckpt.tar")
            samples, size, digest = writer.snapshot(local)
            self.store.upload_file(layout.checkpoint_path(self.shard), local)
            meta = {"schema": CHECKPOINT_SCHEMA, "shard": self.shard, "samples": samples, "bytes": size,
                    "sha256": digest, "specDigest": spec_digest(self.spec),
                    "sampleSeconds": [r.seconds for r in self.records[:samples]],
                    "savedAt": datetime.now(UTC).isoformat(timespec="seconds")}
            self.store.write_bytes(checkpoint_meta_path(self.shard), json_bytes(meta))
            local.unlink(missing_ok=True)
            self._saved = samples
            event("checkpoint saved", shard=self.shard, samples=samples, bytes=size)
            return samples

    def _discard_checkpoint(self, why: str) -> None:
        event("checkpoint discarded", shard=self.shard, reason=why)
        self.store.delete(checkpoint_meta_path(self.shard))
        self.store.delete(layout.checkpoint_path(self.shard))

    def _resume(self, writer: shards.ShardWriter, keys: list[str], tmp: Path) -> int:
        """Copy a verified checkpoint into ``writer``; returns the samples taken over (0: none)."""
        raw = self.store.read_bytes(checkpoint_meta_path(self.shard))
        if raw is None:
            if self.store.exists(layout.checkpoint_path(self.shard)):
                self._discard_checkpoint("checkpoint tar without its metadata")
            return 0
        try:
            meta = json.loads(raw)
            if meta.get("shard") != self.shard or meta.get("schema") != CHECKPOINT_SCHEMA:
                raise ValueError("checkpoint metadata names another shard or schema")
            if meta.get("specDigest") != spec_digest(self.spec):
                raise ValueError("checkpoint was made with different render settings")
            local = tmp / "resume.tar"
            if not self.store.download_file(layout.checkpoint_path(self.shard), local):
                raise ValueError("checkpoint tar is missing")
            if shards.sha256_file(local) != meta.get("sha256"):
                raise ValueError("checkpoint tar does not match its sha256")
            samples = list(shards.read_samples(local))
            if len(samples) != meta.get("samples") or len(samples) > len(keys):
                raise ValueError(f"checkpoint holds {len(samples)} samples, metadata says {meta.get('samples')}")
            seconds = list(meta.get("sampleSeconds", []))
            for i, (key, files) in enumerate(samples):
                if key != keys[i]:
                    raise ValueError(f"checkpoint sample {i} has key {key}, expected {keys[i]}")
                required = self._expected_files(planning.category_of(self.spec, int(key)))
                if set(files) != required:
                    raise ValueError(f"checkpoint sample {key} has files {sorted(files)}, expected {sorted(required)}")
                m = shards.sample_metadata(files)
                if m.get("key") != key or m.get("shard") != self.shard:
                    raise ValueError(f"checkpoint sample {key} metadata does not match its key")
            local.unlink()
        except (ValueError, KeyError, TypeError, OSError) as exc:  # tarfile.TarError is an Exception too
            self._discard_checkpoint(str(exc))
            return 0
        except Exception as exc:
            if type(exc).__module__ == "tarfile":
                self._discard_checkpoint(f"checkpoint tar is malformed: {exc}")
                return 0
            raise
        for i, (key, files) in enumerate(samples):
            writer.add(key, files)
            m = shards.sample_metadata(files)
            q = m["quality"]
            self.records.append(_Record(key, m["category"], float(q["score"]), bool(q["passed"]),
                                        int(q["attempts"]), float(seconds[i]) if i < len(seconds) else 0.0,
                                        quality=q, index=int(m.get("index", -1))))
        event("checkpoint resumed", shard=self.shard, samples=len(samples))
        return len(samples)

    def _expected_files(self, category: str) -> set[str]:
        from synth_contract.multiview import sample_members

        return sample_members(self.spec, category)

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
                resumed = self._resume(writer, keys, tmp)
                self._writer = writer
                return self._render_rest(indices, writer, resumed, tmp, t0)
            finally:
                with self._ckpt_lock:
                    self._writer = None
                writer.close()

    def _render_rest(self, indices: range, writer: shards.ShardWriter, resumed: int, tmp: Path,
                     t0: float) -> ShardOutcome:
        renderer = self.renderer
        device = ""
        old = None  # spec.derivedFrom: the earlier version's shard, read alongside
        if self.spec.derived_from is not None:
            old = derive.OldShard(self.spec, derive.sibling_store(self.store, self.spec.version,
                                                                  self.spec.derived_from.version), self.shard, tmp)
        for index in indices[resumed:]:
            if self.stop.is_set():
                break
            ts = time.perf_counter()
            plan = plan_sample(self.spec, index)
            sample, old_score = self._copied(old, plan) if old is not None else (None, None)
            if sample is None:
                if renderer is None:
                    renderer = self.renderer = shared_renderer(str(self.spec.render.device),
                                                               str(self.spec.render.engine))
                    if self.on_renderer is not None:
                        self.on_renderer()
                device = renderer.device
                sample = render_sample(self.spec, plan, renderer, dataset=self.dataset)
                if old is not None:
                    files, meta = derive.rerendered(sample.files, sample.meta, old_version=old.version,
                                                    old_score=old_score)
                    sample = dataclasses.replace(sample, files=files, meta=meta)
            writer.add(sample.key, sample.files)
            seconds = time.perf_counter() - ts
            self.records.append(_Record(sample.key, plan.category, sample.score, sample.passed, sample.attempts,
                                        round(seconds, 4), quality=sample.meta["quality"], index=index))
            # A simulated sample's bake (seconds, cacheHit): wall clock stays out of the sample JSON.
            sim_fields: dict[str, Any] = {"simulation": sample.simulation} if sample.simulation else {}
            event("sample", shard=self.shard, index=index, key=sample.key, category=plan.category,
                  score=sample.score, passed=sample.passed, attempts=sample.attempts, seconds=round(seconds, 4),
                  renderSeconds=round(sample.render_seconds, 4), done=writer.samples, of=len(indices),
                  **sim_fields)
            if self.progress is not None:
                self.progress({"index": index, "key": sample.key, "category": plan.category, "score": sample.score,
                               "passed": sample.passed, "attempts": sample.attempts, "seconds": seconds,
                               "renderSeconds": sample.render_seconds, "shard": self.shard})
        if writer.samples < len(indices):
            saved = self.checkpoint() or 0
            return ShardOutcome("interrupted", self.shard, samples=saved, seconds=time.perf_counter() - t0,
                                pass_rate=self._pass_rate(), device=device, resumed=resumed,
                                reason="stop requested")
        pass_rate = self._pass_rate()
        if pass_rate < self.spec.quality.min_pass_rate:
            event("quality gate failed", shard=self.shard, passRate=pass_rate,
                  minPassRate=self.spec.quality.min_pass_rate)
            return ShardOutcome("failed", self.shard, samples=writer.samples, seconds=time.perf_counter() - t0,
                                pass_rate=pass_rate, device=device, resumed=resumed,
                                reason=f"quality: pass rate {pass_rate:.3f} < minPassRate "
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
                                seconds=time.perf_counter() - t0, pass_rate=pass_rate, device=device,
                                manifest=committed, resumed=resumed)
        size, digest = writer.finish()
        tar_path, held = writer.path, [r for r in self.records if not r.passed]
        if held:  # quarantine: failing samples leave the training shard, on record before the commit
            split = quarantine.split_tar(writer.path, [r.key for r in held], tmp / "kept.tar", tmp / "held.tar")
            entries = [{"key": r.key, "index": r.index, "category": r.category, "score": r.score,
                        "attempts": r.attempts, "reasons": list(r.quality.get("reasons") or []),
                        "quality": r.quality} for r in held]
            self.store.upload_file(quarantine.quarantine_path(self.shard), tmp / "held.tar")
            self.store.write_bytes(quarantine.quarantine_list_path(self.shard), json_bytes(
                quarantine.quarantine_doc(self.dataset, self.spec.version, self.shard, entries, split)))
            tar_path, size, digest = tmp / "kept.tar", split.kept_bytes, split.kept_sha256
            event("samples quarantined", shard=self.shard, samples=len(held),
                  reasons=sorted({str(x) for r in held for x in (r.quality.get("reasons") or [])})[:5])
        manifest = self._manifest(indices, size, digest, device or getattr(renderer, "device", ""),
                                  getattr(renderer, "engine_version", ""), t0, resumed)
        self.store.upload_file(layout.shard_path(self.shard), tar_path)
        self.store.write_bytes(layout.manifest_path(self.shard), json_bytes(manifest))
        self.store.delete(checkpoint_meta_path(self.shard))
        self.store.delete(layout.checkpoint_path(self.shard))
        event("shard committed", shard=self.shard, samples=manifest["samples"], bytes=size, sha256=digest,
              passRate=pass_rate, quarantined=len(held), seconds=round(time.perf_counter() - t0, 3))
        return ShardOutcome("committed", self.shard, samples=manifest["samples"], seconds=time.perf_counter() - t0,
                            pass_rate=pass_rate, render_seconds=manifest["timings"]["renderSeconds"],
                            device=manifest["device"], manifest=manifest, resumed=resumed)

    def _copied(self, old: derive.OldShard, plan: Any) -> tuple[RenderedSample | None, float | None]:
        """The earlier version's sample when it is good enough to keep (derivedFrom), else None."""
        files, score = old.take(plan.key, plan.category)
        if files is None:
            return None, score
        files, meta = derive.copied(files, version=self.spec.version, old_version=old.version)
        q = meta.get("quality") or {}
        return RenderedSample(key=plan.key, files=files, meta=meta, score=float(q.get("score") or 0.0),
                              passed=True, attempts=int(q.get("attempts") or 1), render_seconds=0.0), score

    def _pass_rate(self) -> float:
        return sum(r.passed for r in self.records) / len(self.records) if self.records else 0.0

    def _manifest(self, indices: range, size: int, digest: str, device: str, engine_version: str, t0: float,
                  resumed: int) -> dict[str, Any]:
        scores = [r.score for r in self.records]
        kept = [r for r in self.records if r.passed]
        held = [r for r in self.records if not r.passed]
        cats: dict[str, int] = {}
        held_cats: dict[str, int] = {}
        for r in kept:
            cats[r.category] = cats.get(r.category, 0) + 1
        for r in held:
            held_cats[r.category] = held_cats.get(r.category, 0) + 1
        render_s = sum(r.seconds for r in self.records)
        return {
            "schema": MANIFEST_SCHEMA, "dataset": self.dataset, "version": self.spec.version, "shard": self.shard,
            "path": layout.shard_path(self.shard), "samples": len(kept), "firstIndex": indices.start,
            "lastIndex": indices.stop - 1, "sha256": digest, "bytes": size, "categories": dict(sorted(cats.items())),
            "keys": {"first": kept[0].key, "last": kept[-1].key} if kept else None,
            "quarantined": {"samples": len(held), "keys": [r.key for r in held],
                            "categories": dict(sorted(held_cats.items())),
                            "path": quarantine.quarantine_path(self.shard) if held else None},
            "quality": {"mean": round(sum(scores) / len(scores), 4), "min": round(min(scores), 4),
                        "passRate": round(self._pass_rate(), 4),
                        "rerenders": sum(r.attempts - 1 for r in self.records),
                        "minScore": self.spec.quality.min_score, "scores": scores},
            "timings": {"renderSeconds": round(render_s, 3), "totalSeconds": round(time.perf_counter() - t0, 3),
                        "sampleSeconds": [r.seconds for r in self.records]},
            "device": device, "engine": str(self.spec.render.engine), "engineVersion": engine_version,
            "passes": [str(p) for p in self.spec.render.passes], "specDigest": spec_digest(self.spec),
            "resumedSamples": resumed, "committedAt": datetime.now(UTC).isoformat(timespec="seconds"),
            **image_provenance(),  # the renderer image (its digest when pinned): synth_render/provenance.py
        }


def run_shard(spec: SynthDatasetSpec, dataset: str, shard: int, *, store: Store,
              stop: threading.Event | None = None, progress: Callable[[dict[str, Any]], None] | None = None,
              renderer: Renderer | None = None, workdir: Path | None = None) -> ShardOutcome:
    """Render and commit one shard (or skip it when committed, or checkpoint it when ``stop`` is set).

    Raises :class:`BadConfig` for problems retrying cannot fix; other exceptions are render or
    upload errors. A failed quality gate returns ``status="failed"`` without committing.
    """
    run = ShardRun(spec=spec, dataset=dataset, shard=shard, store=store, stop=stop or threading.Event(),
                   progress=progress, renderer=renderer, workdir=workdir)
    return run.run()


# --------------------------------------------------------------------------- entry point


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="synth-render", description="Render one shard of a SynthDataset.")
    p.add_argument("--dataset", required=True, help="SynthDataset name (data lands under {uri}/{dataset}/v{version}).")
    p.add_argument("--shard-start", type=int, default=0, help="First shard of the batch; JOB_COMPLETION_INDEX is added.")
    p.add_argument("--shard", type=int, default=None, help="Render exactly this shard (ignores JOB_COMPLETION_INDEX).")
    p.add_argument("--spec-file", default=None, help="Read the spec JSON from a file instead of $SYNTH_SPEC_JSON.")
    p.add_argument("--workdir", default=None, help="Local scratch directory for the shard tar.")
    return p.parse_args(argv)


def _load_spec(args: argparse.Namespace) -> SynthDatasetSpec:
    if args.spec_file:
        text = Path(args.spec_file).read_text()
    else:
        text = os.environ.get("SYNTH_SPEC_JSON", "")
        if not text:
            raise BadConfig("SYNTH_SPEC_JSON is not set (the dataset spec as camelCase JSON)")
    try:
        spec = spec_from_json(text)
    except ValueError as exc:
        raise BadConfig(str(exc)) from None
    if str(spec.render.engine) != "cycles":
        raise BadConfig(f"spec.render.engine: {spec.render.engine!r} is not supported by this renderer (use cycles)")
    return spec


def _shard_of(args: argparse.Namespace) -> int:
    if args.shard is not None:
        return int(args.shard)
    jci = os.environ.get("JOB_COMPLETION_INDEX", "0")
    if not jci.isdigit():
        raise BadConfig(f"JOB_COMPLETION_INDEX must be a non-negative integer, got {jci!r}")
    return int(args.shard_start) + int(jci)


class _SigtermWatch:
    """Notice SIGTERM at once, even while Blender is inside a long render call.

    Python runs signal handlers in the main thread between bytecodes, which a render call can
    delay for minutes. Python's C-level handler also writes the signal number to a wakeup pipe
    immediately; a watcher thread reads it, sets ``stop`` (the main loop checkpoints at the next
    sample boundary) and, if the current sample is still running after the grace period,
    abandons it: the complete samples are checkpointed from the watcher and the process exits 143.
    """

    def __init__(self, run: ShardRun, done: threading.Event, *, grace: float = SIGTERM_GRACE_SECONDS) -> None:
        self.run, self.done, self.grace = run, done, grace
        self._r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        self.install()
        threading.Thread(target=self._watch, name="sigterm", daemon=True).start()

    def install(self) -> None:
        """(Re-)install the handler: importing Blender resets SIGTERM to its default action."""
        signal.signal(signal.SIGTERM, lambda signum, frame: self.run.stop.set())

    def _watch(self) -> None:
        while True:
            data = os.read(self._r, 64)
            if signal.SIGTERM in data:
                break
        event("signal received", signal=int(signal.SIGTERM), shard=self.run.shard)
        self.run.stop.set()
        if self.done.wait(self.grace):
            return
        try:
            saved = self.run.checkpoint()
            if saved is None:  # the main thread is already finishing: let it exit normally
                self.done.wait()
                return
            event("sample abandoned", shard=self.run.shard, checkpointed=saved)
            code = EXIT_SIGTERM
        except Exception as exc:  # the checkpoint upload failed: the next attempt starts over
            event("checkpoint failed", level=40, shard=self.run.shard, error=str(exc))
            code = EXIT_ERROR
        logging.shutdown()
        os._exit(code)


def main(argv: list[str] | None = None) -> None:
    setup_json_logging()
    try:
        args = _parse_args(argv)
        spec = _load_spec(args)
        shard = _shard_of(args)
        planning.shard_range(spec, shard)
        root = layout.dataset_root(spec.output.uri, args.dataset, spec.version)
        store = open_store(root, endpoint_url=spec.output.endpoint_url, region=spec.output.region)
        grace = float(os.environ.get("SYNTH_SIGTERM_GRACE_SECONDS", SIGTERM_GRACE_SECONDS))
        from synth_render.assets.runtime import preflight_messages

        unusable = preflight_messages(spec)  # an unreadable asset URI: exit 2 naming it, not a retry loop
        if unusable:
            raise BadConfig("; ".join(unusable))
    except (BadConfig, IndexError, ValueError) as exc:
        event("bad configuration", level=40, error=str(exc))
        sys.exit(EXIT_CONFIG)
    run = ShardRun(spec=spec, dataset=args.dataset, shard=shard, store=store,
                   workdir=Path(args.workdir) if args.workdir else None)
    done = threading.Event()
    watch = _SigtermWatch(run, done, grace=grace)
    run.on_renderer = watch.install
    event("shard start", shard=shard, dataset=args.dataset, root=root, pid=os.getpid())
    try:
        outcome = run.run()
    except BadConfig as exc:
        event("bad configuration", level=40, error=str(exc))
        sys.exit(EXIT_CONFIG)
    except Exception as exc:
        event("shard error", level=40, shard=shard, error=f"{type(exc).__name__}: {exc}")
        sys.exit(EXIT_ERROR)
    finally:
        done.set()
    event("shard end", shard=shard, status=outcome.status, samples=outcome.samples, passRate=outcome.pass_rate,
          seconds=round(outcome.seconds, 3), reason=outcome.reason)
    sys.exit(outcome.exit_code)


if __name__ == "__main__":
    main()
