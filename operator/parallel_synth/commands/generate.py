"""``synthctl generate``: render a dataset on this machine (``parallel_synth.local``), resumably.

Thin: parse options, take the output's lock, refuse a different spec on the same version, run
the pool, write the index, print the result and choose the exit code.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from parallel_synth.commands.common import Usage
from parallel_synth.dataset.files import numbered, read_json
from synth_contract import layout, planning, plugins
from synth_contract.exitcodes import EXIT_SIGTERM
from synth_contract.layout import DATASET_JSON, LOCAL_RUN_JSON, STATE_DIR
from synth_contract.store import FileStore, Store, open_store
from synth_contract.validation import EXIT_PROBLEMS, EXIT_USAGE, load_dataset

EXIT_INTERRUPTED = 130


@click.command("generate")
@click.argument("manifest", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output root folder (data lands in DIR/{dataset}/v{version}/); default: spec.output.uri.")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: one per GPU, else one per CPU core).")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "live", "lines"]), default="auto",
              help="Live panel on a terminal, plain lines otherwise (auto).")
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where workers' logs go (default: DATASET/.synth/logs/ in the output; for s3:// output, "
                   "a folder under the system temp dir).")
@click.option("--local", "_local", is_flag=True, hidden=True,
              help="Accepted for the documented `synthctl generate --local`; generate always runs locally.")
@click.option("--renderer", default=None, hidden=True,
              help="module:function with run_shard's signature (default: entry point 'blender' of group "
                   "parallel_synth.renderers).")
def generate(manifest: str, out: Path | None, workers: int | None, progress_mode: str,
             log_dir: Path | None, _local: bool, renderer: str | None) -> None:
    """Render a dataset on this machine; a second run resumes where the first stopped.

    Ctrl-C stops cleanly: workers save a checkpoint of their shard; run the same command again
    to continue. Committed shards are never rendered twice. One run per output at a time: a
    second concurrent run on the same output is refused and names the holder.

    \b
    Exit codes: 0 every shard committed; 1 the manifest has problems, or shards failed after
    their retries; 2 wrong usage, unreadable manifest, unwritable or busy output;
    130 stopped by Ctrl-C, 143 by SIGTERM (run again to resume).
    """
    from parallel_synth.local.lock import OutputLocked, output_lock
    from parallel_synth.local.pool import default_renderer

    obj = load_dataset(manifest)
    spec, name = obj.spec, obj.metadata.name
    if out is not None:
        spec = spec.model_copy(update={"output": spec.output.model_copy(update={"uri": out.resolve().as_uri()})})
    if renderer is None:
        try:
            renderer = default_renderer()
        except RuntimeError as exc:  # an operator-only install: no renderer to run
            raise Usage(str(exc)) from None
    _preflight_or_exit(spec)  # an unreadable asset URI or an empty library: exit 2 before any worker starts
    root = layout.dataset_root(spec.output.uri, name, spec.version)
    files = open_store(root, endpoint_url=spec.output.endpoint_url, region=spec.output.region)
    local = files.root if isinstance(files, FileStore) else None
    lock_path = (local / STATE_DIR / "generate.lock") if local is not None else (
        _scratch() / "locks" / f"{hashlib.sha256(root.encode()).hexdigest()[:16]}.lock")
    with ExitStack() as held:
        try:
            held.enter_context(output_lock(lock_path))
            _guard_spec(files, spec.wire())
        except click.ClickException as exc:
            raise Usage(exc.message) from None
        except OutputLocked as exc:
            raise Usage(f"{root}: {exc}") from None
        except Exception as exc:  # permissions, missing bucket, no credentials: say where and why
            raise Usage(f"cannot write to {root}: {type(exc).__name__}: {exc}") from exc
        _generate_locked(spec, name, files, root, workers=workers, progress_mode=progress_mode,
                         logs=log_dir or ((local / STATE_DIR / "logs") if local is not None else
                                          _scratch() / f"{name}-v{spec.version}-logs"),
                         renderer=renderer)


PREFLIGHT_GROUP = plugins.PREFLIGHT
"""Entry points ``fn(spec) -> [(field path, problem)]`` run before any worker starts (the renderer
declares the asset check: ``synth_render.assets.check:preflight_problems``)."""


def _preflight_or_exit(spec: Any) -> None:
    """Exit 2 naming each unusable input of the spec (field path and why); return when all are fine."""
    from importlib.metadata import entry_points

    problems = [p for ep in entry_points(group=PREFLIGHT_GROUP) for p in ep.load()(spec)]
    for path, why in problems:
        click.echo(f"{path}: {why}", err=True)
    if problems:
        sys.exit(EXIT_USAGE)


def _scratch() -> Path:
    return Path(tempfile.gettempdir()) / "parallel-synth"


def _generate_locked(spec: Any, name: str, files: Store, root: str, *, workers: int | None, progress_mode: str,
                     logs: Path, renderer: str) -> None:
    from parallel_synth.dataset.index import write_index
    from parallel_synth.local.generate import run_dataset
    from parallel_synth.local.pool import default_workers, gpu_count
    from parallel_synth.local.progress import Display, LineDisplay, LiveDisplay

    n = workers or default_workers()
    gpus = gpu_count()
    live = progress_mode == "live" or (progress_mode == "auto" and sys.stdout.isatty())
    click.echo(f"{name}: {spec.samples:,} samples in {planning.shard_count(spec):,} shards -> {root}")
    click.echo(f"workers: {n} ({'GPU' if gpus else 'CPU'}), logs in {logs}; "
               "Ctrl-C stops cleanly, run again to resume")
    display: Display = LiveDisplay(f"synthctl generate {name}") if live else LineDisplay(sys.stdout)
    try:
        result = run_dataset(spec, name, files, display, workers=n, gpus=gpus,
                             renderer=renderer, log_dir=str(logs))
    finally:
        display.close()
    if result.status == "interrupted":
        click.echo(f"stopped after {result.seconds:.0f}s: {result.rendered_shards} shards committed in this run, "
                   f"{result.checkpointed_samples} samples of unfinished shards saved in checkpoints; "
                   "run the same command again to resume.")
        sys.exit(EXIT_SIGTERM if result.signal == signal.SIGTERM else EXIT_INTERRUPTED)
    if result.aborted:
        click.echo(f"stopped: {result.aborted}", err=True)
        sys.exit(EXIT_PROBLEMS)
    if result.status == "failed":
        click.echo("some shards failed after all their retries:", err=True)
        for shard, error in result.failed:
            click.echo(f"  shard {shard}: {error}", err=True)
        click.echo("run the same command again to retry them (committed shards are kept).", err=True)
        sys.exit(EXIT_PROBLEMS)
    resumed = f", {result.resumed_samples} samples resumed from checkpoints" if result.resumed_samples else ""
    click.echo(f"all {planning.shard_count(spec):,} shards committed "
               f"({result.rendered_shards} rendered now, {result.skipped_shards} earlier{resumed})")
    doc = _readable_summary(files, DATASET_JSON) if result.rendered_shards == 0 else None
    if doc is not None:
        click.echo("the dataset was already complete; index and dataset.json kept as they are")
    else:
        click.echo("writing the index (index/metadata.parquet, index/metadata.jsonl) and dataset.json...")
        doc = write_index(spec, name, files, now=datetime.now(UTC))
    q = doc["quality"]
    click.echo(f"done in {result.seconds:.0f}s: {doc['samples']['completed']:,} samples, "
               f"quality mean {q['mean'] or 0:.2f}, pass rate {q['passRate'] or 0:.1%}")
    click.echo(_how_to_load(root, spec.output.uri.startswith("file://"), doc))


def _readable_summary(files: Store, rel: str) -> dict[str, Any] | None:
    """An existing ``dataset.json`` that can be shown, or ``None`` (missing or damaged: write it again)."""
    if not files.exists(rel):
        return None
    try:
        doc = read_json(files, rel)
        doc["quality"]["mean"], doc["quality"]["passRate"], doc["samples"]["completed"], doc["shards"]["total"]
    except (ValueError, TypeError, KeyError, RecursionError, OSError):
        return None
    return doc if isinstance(doc, dict) else None


def _guard_spec(files: Store, wire: dict[str, Any]) -> None:
    """Refuse to mix two different specs under one version (that would corrupt the dataset)."""
    rel = LOCAL_RUN_JSON
    if files.exists(rel):
        earlier = read_json(files, rel).get("spec")
        keep = ("samples", "seed", "version", "shardSize", "categories", "render", "quality", "derivedFrom")
        grown = _grown_schedule(files, earlier, wire) if earlier is not None else None
        if grown is None and earlier is not None and any(earlier.get(k) != wire.get(k) for k in keep):
            changed = [k for k in keep if earlier.get(k) != wire.get(k)]
            if earlier.get("schedule") != wire.get("schedule"):
                changed.append("schedule")
            raise click.ClickException(
                f"{files.uri} was started with a different spec (changed: {', '.join(changed)}); "
                "bump spec.version to render a new version, or restore the manifest to resume"
            )
        if grown:
            files.write_bytes(rel, (json.dumps({"spec": wire}, indent=2) + "\n").encode())
        return
    files.write_bytes(rel, (json.dumps({"spec": wire}, indent=2) + "\n").encode())


def _grown_schedule(files: Store, earlier: dict[str, Any], wire: dict[str, Any]) -> bool | None:
    """True when ``wire`` only appends schedule segments and/or grows ``samples`` after the committed
    shards (the committed shards keep their samples); None when it changes anything else."""
    from synth_contract.immutability import transition_problems

    same = ("seed", "version", "shardSize", "categories", "render", "quality", "derivedFrom")
    if any(earlier.get(k) != wire.get(k) for k in same) or int(wire["samples"]) < int(earlier["samples"]):
        return None
    if earlier.get("schedule") == wire.get("schedule") and earlier["samples"] == wire["samples"]:
        return False
    size = int(earlier["shardSize"])
    if int(wire["samples"]) != int(earlier["samples"]) and int(earlier["samples"]) % size:
        raise click.ClickException(
            f"spec.samples: {files.uri} ends with a short shard ({int(earlier['samples']) % size} of {size} samples);"
            " growing it would change a committed shard: bump spec.version instead")
    next_shard = max([*numbered(files, layout.MANIFESTS, ".json"), *numbered(files, layout.CHECKPOINTS, ".json")],
                     default=-1) + 1
    problems = transition_problems({"spec": earlier, "status": {"nextShard": next_shard}}, {"spec": wire},
                                   assume_started=True)
    if problems:
        raise click.ClickException(f"{files.uri}: " + "; ".join(problems))
    return True


def _how_to_load(root: str, local: bool, doc: dict[str, Any]) -> str:
    from urllib.parse import unquote, urlparse

    where = unquote(urlparse(root).path) if local else root
    last = doc["shards"]["total"] - 1
    shards = f"{where}/{layout.SHARDS}/{{{0:08d}..{last:08d}}}.tar"
    if not local:
        shards = f"pipe:aws s3 cp {root}/{layout.SHARDS}/{{{0:08d}..{last:08d}}}.tar -"
    return (
        f"\nData: {where}\n"
        "Load it (depth and seg stay exact 16-bit arrays; see README \"Try it\"):\n"
        "  import io, numpy as np, webdataset as wds, pyarrow.parquet as pq\n"
        "  from PIL import Image\n"
        "  def exact(key, data):  # depth.png, seg.png -> numpy uint16/uint8, never 8-bit RGB\n"
        "      return np.array(Image.open(io.BytesIO(data))) if key.endswith((\"depth.png\", \"seg.png\")) else None\n"
        f"  ds = wds.WebDataset(\"{shards}\", shardshuffle=False).decode(exact, \"pil\")\n"
        f"  index = pq.read_table(\"{where}/{layout.INDEX_PARQUET}\")  # one row per sample"
    )
