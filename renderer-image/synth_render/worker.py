"""The shard worker: render one shard in one long-lived Blender process and commit it.

``run_shard`` is the Python API (local mode calls it in long-lived pool processes); ``main``
is the container entry point ``synth-render`` (one shard per pod: ``--shard-start`` plus
``$JOB_COMPLETION_INDEX``). The commit protocol follows DESIGN.md: the tar is streamed to
local disk, uploaded, and the shard manifest is written last as the commit marker
(``shard_run``, ``manifests``). A shard with a manifest is skipped. A stop request (SIGTERM, or
``stop`` set by local mode) saves the complete samples as a checkpoint; the next attempt
verifies and resumes from it (``checkpoints``).

Exit codes: 0 committed or already committed, 2 bad configuration, 3 quality gate failed,
143 stopped by SIGTERM after a checkpoint, 1 any other render or upload error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synth_contract import layout, planning
from synth_contract.api import SynthDatasetSpec
from synth_contract.exitcodes import EXIT_BAD_CONFIG, EXIT_ERROR, EXIT_SIGTERM, exit_process
from synth_contract.store import Store, StoreForbidden, open_store
from synth_contract.validation import spec_from_json
from synth_render import metrics, pipeline
from synth_render.assets.fetch import Unavailable
from synth_render.assets.runtime import preflight_messages
from synth_render.logs import event, setup_json_logging
from synth_render.rendering import Renderer
from synth_render.shard_run import BadConfig, ShardOutcome, ShardRun

TERMINATION_LOG = "/dev/termination-log"
"""Where a committed shard's report goes (Kubernetes' default ``terminationMessagePath``; the kubelet
copies it into the pod's ``state.terminated.message``, which the operator reads:
``parallel_synth.decisions.facts.TERMINATION_MESSAGE``). ``$SYNTH_TERMINATION_LOG`` overrides it."""

TERMINATION_LIMIT = 4096
"""The kubelet keeps at most 4096 bytes of a termination message."""

SIGTERM_GRACE_SECONDS = 5.0
"""After SIGTERM, how long the current sample may take before it is abandoned
(``$SYNTH_SIGTERM_GRACE_SECONDS`` overrides it; keep it well under the pod's grace period)."""


def run_shard(spec: SynthDatasetSpec, dataset: str, shard: int, *, store: Store,
              stop: threading.Event | None = None, progress: Callable[[dict[str, Any]], None] | None = None,
              renderer: Renderer | None = None, workdir: Path | None = None,
              depth: int = pipeline.DEPTH) -> ShardOutcome:
    """Render and commit one shard (or skip it when committed, or checkpoint it when ``stop`` is set).

    Raises :class:`BadConfig` for problems retrying cannot fix; other exceptions are render or
    upload errors. A failed quality gate returns ``status="failed"`` without committing.
    ``depth``: samples in flight in the pipeline (1: one at a time, as the unpipelined worker).
    """
    run = ShardRun(spec=spec, dataset=dataset, shard=shard, store=store, stop=stop or threading.Event(),
                   progress=progress, renderer=renderer, workdir=workdir, depth=depth)
    return run.run()


def termination_message(outcome: ShardOutcome) -> str:
    """The JSON report of a committed shard for the operator (empty for any other outcome).

    ``{"outcome": "committed", "shard", "samples", "quarantined": {"samples", "categories"},
    "timings": {"renderCallSeconds", "mainThreadSeconds"}}``: the operator counts quarantined samples
    apart and sums the main thread's seconds into ``status.renderBusyRatio``. Under
    :data:`TERMINATION_LIMIT` bytes (the per-category counts are dropped first if it would not be).
    """
    doc = outcome.manifest
    if outcome.status != "committed" or doc is None:
        return ""
    q = doc.get("quarantined") or {}
    t = doc.get("timings") or {}
    main = sum(float(t.get(k) or 0.0) for k in ("renderCallSeconds", "mainThreadOtherSeconds", "pipelineWaitSeconds"))
    report: dict[str, Any] = {
        "outcome": "committed", "shard": outcome.shard, "samples": int(doc.get("samples") or 0),
        "quarantined": {"samples": int(q.get("samples") or 0), "categories": dict(q.get("categories") or {})},
        "timings": {"renderCallSeconds": round(float(t.get("renderCallSeconds") or 0.0), 3),
                    "mainThreadSeconds": round(main, 3)},
    }
    text = json.dumps(report, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > TERMINATION_LIMIT:
        report["quarantined"].pop("categories")
        text = json.dumps(report, sort_keys=True, separators=(",", ":"))
    return text


def write_termination_message(outcome: ShardOutcome, environ: dict[str, str] | None = None) -> None:
    """Write :func:`termination_message` to the termination log when there is one (best effort: outside
    a pod there is no ``/dev/termination-log``, and a committed shard must still exit 0)."""
    text = termination_message(outcome)
    if not text:
        return
    env = os.environ if environ is None else environ
    path = env.get("SYNTH_TERMINATION_LOG", TERMINATION_LOG)
    if path == TERMINATION_LOG and not os.path.exists(path):  # not in a pod (the kubelet mounts the file)
        return
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        pass


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
    # --spec-file, else $SYNTH_SPEC_FILE (the operator mounts the spec from a ConfigMap), else
    # $SYNTH_SPEC_JSON (older operators put the whole spec in every pod's env).
    spec_file = args.spec_file or os.environ.get("SYNTH_SPEC_FILE", "")
    if spec_file:
        try:
            text = Path(spec_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadConfig(f"spec file {spec_file}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    else:
        text = os.environ.get("SYNTH_SPEC_JSON", "")
        if not text:
            raise BadConfig("neither SYNTH_SPEC_FILE nor SYNTH_SPEC_JSON is set (the dataset spec as camelCase JSON)")
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
    """``synth-render``: render one shard and exit with its code (:mod:`synth_contract.exitcodes`)."""
    setup_json_logging()
    try:
        args = _parse_args(argv)
        spec = _load_spec(args)
        shard = _shard_of(args)
        planning.shard_range(spec, shard)
        root = layout.dataset_root(spec.output.uri, args.dataset, spec.version)
        store = open_store(root, endpoint_url=spec.output.endpoint_url, region=spec.output.region)
        grace = float(os.environ.get("SYNTH_SIGTERM_GRACE_SECONDS", SIGTERM_GRACE_SECONDS))
        unusable = preflight_messages(spec)  # an unreadable asset URI: exit 2 naming it, not a retry loop
        if unusable:
            raise BadConfig("; ".join(unusable))
        gauges = metrics.serve()  # $SYNTH_METRICS_PORT: render_busy_ratio for Prometheus
    except Unavailable as exc:  # the asset store did not answer (network, throttling): the Job retries the pod
        event("asset source unavailable", level=40, uri=exc.uri, error=str(exc))
        exit_process(EXIT_ERROR)
    except (BadConfig, IndexError, ValueError, OSError) as exc:  # OSError: the metrics port is taken
        event("bad configuration", level=40, error=str(exc))
        exit_process(EXIT_BAD_CONFIG)
    run = ShardRun(spec=spec, dataset=args.dataset, shard=shard, store=store,
                   workdir=Path(args.workdir) if args.workdir else None)
    if gauges is not None:
        run.on_timings = lambda t: gauges.update(args.dataset, shard, t)
    done = threading.Event()
    watch = _SigtermWatch(run, done, grace=grace)
    run.on_renderer = watch.install
    event("shard start", shard=shard, dataset=args.dataset, root=root, pid=os.getpid())
    try:
        outcome = run.run()
    except (BadConfig, StoreForbidden) as exc:  # StoreForbidden: the output's policy refuses a read
        done.set()
        event("bad configuration", level=40, error=str(exc))
        exit_process(EXIT_BAD_CONFIG)
    except Unavailable as exc:
        done.set()
        event("asset source unavailable", level=40, shard=shard, uri=exc.uri, error=str(exc))
        exit_process(EXIT_ERROR)
    except Exception as exc:
        done.set()
        event("shard error", level=40, shard=shard, error=f"{type(exc).__name__}: {exc}")
        exit_process(EXIT_ERROR)
    done.set()
    event("shard end", shard=shard, status=outcome.status, samples=outcome.samples, passRate=outcome.pass_rate,
          seconds=round(outcome.seconds, 3), reason=outcome.reason)
    write_termination_message(outcome)  # the operator's quarantine counts and render busy ratio
    # os._exit after Python's own shutdown: a native thread pool aborting at teardown must not turn
    # a committed shard (0) or a checkpointed one (143) into a crash the Job would retry.
    exit_process(outcome.exit_code)


if __name__ == "__main__":
    main()
