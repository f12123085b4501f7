"""The local-mode commands of ``synthctl``: generate, validate, preview and plan.

Thin: parse options, call the module that does the work, print the result and choose the
exit code. Registered lazily by ``parallel_synth.cli``, so none of this is imported for
``synthctl --help``.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from synth_contract import planning
from synth_contract.api import SynthDataset

EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_SIGTERM = 143


def _load(manifest: str) -> SynthDataset:
    """The manifest's SynthDataset; exits 2 if it cannot be read, 1 if it has field problems."""
    from synth_contract.validation import load_dataset

    return load_dataset(manifest)


def _root_uri(out: Path | None, uri: str) -> str:
    return out.resolve().as_uri() if out is not None else uri


# --------------------------------------------------------------------------- generate


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
              help="Accepted for DESIGN.md's `synthctl generate --local`; generate always runs locally.")
@click.option("--renderer", default=None, hidden=True, help="module:function with run_shard's signature.")
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
    from parallel_synth.local.store import LocalFiles, open_dataset

    obj = _load(manifest)
    spec, name = obj.spec, obj.metadata.name
    if out is not None:
        spec = spec.model_copy(update={"output": spec.output.model_copy(update={"uri": out.resolve().as_uri()})})
    from parallel_synth.cmd_assets import preflight_or_exit

    preflight_or_exit(spec)  # an unreadable asset URI or an empty library: exit 2 before any worker starts
    root = planning.dataset_root(spec.output.uri, name, spec.version)
    files = open_dataset(root, endpoint_url=spec.output.endpoint_url, region=spec.output.region)
    local = files.path if isinstance(files, LocalFiles) else None
    lock_path = (local / STATE_DIR / "generate.lock") if local is not None else (
        _scratch() / "locks" / f"{hashlib.sha256(root.encode()).hexdigest()[:16]}.lock")
    with ExitStack() as held:
        try:
            held.enter_context(output_lock(lock_path))
            _guard_spec(files, spec.wire())
        except click.ClickException as exc:
            raise _Usage(exc.message) from None
        except OutputLocked as exc:
            raise _Usage(f"{root}: {exc}") from None
        except Exception as exc:  # permissions, missing bucket, no credentials: say where and why
            raise _Usage(f"cannot write to {root}: {type(exc).__name__}: {exc}") from exc
        _generate_locked(spec, name, files, root, workers=workers, progress_mode=progress_mode,
                         logs=log_dir or ((local / STATE_DIR / "logs") if local is not None else
                                          _scratch() / f"{name}-v{spec.version}-logs"),
                         renderer=renderer)


STATE_DIR = ".synth"
"""Run state inside a local dataset root (lock, worker logs); validate and loaders ignore it."""


class _Usage(click.ClickException):
    """Wrong usage or an input/output that cannot be used: exit 2."""

    exit_code = EXIT_USAGE


def _scratch() -> Path:
    return Path(tempfile.gettempdir()) / "parallel-synth"


def _generate_locked(spec: Any, name: str, files: Any, root: str, *, workers: int | None, progress_mode: str,
                     logs: Path, renderer: str | None) -> None:
    from parallel_synth.local.generate import run_dataset
    from parallel_synth.local.index import DATASET_JSON, write_index
    from parallel_synth.local.pool import DEFAULT_RENDERER, default_workers, gpu_count
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
                             renderer=renderer or DEFAULT_RENDERER, log_dir=str(logs))
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


def _readable_summary(files: Any, rel: str) -> dict[str, Any] | None:
    """An existing ``dataset.json`` that can be shown, or ``None`` (missing or damaged: write it again)."""
    if not files.exists(rel):
        return None
    try:
        doc = json.loads(files.read_bytes(rel))
        doc["quality"]["mean"], doc["quality"]["passRate"], doc["samples"]["completed"], doc["shards"]["total"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _guard_spec(files: Any, wire: dict[str, Any]) -> None:
    """Refuse to mix two different specs under one version (that would corrupt the dataset)."""
    rel = "local-run.json"
    if files.exists(rel):
        earlier = json.loads(files.read_bytes(rel)).get("spec")
        keep = ("samples", "seed", "version", "shardSize", "categories", "render", "quality", "derivedFrom")
        grown = _grown_schedule(files, earlier, wire) if earlier is not None else None
        if grown is None and earlier is not None and any(earlier.get(k) != wire.get(k) for k in keep):
            changed = [k for k in keep if earlier.get(k) != wire.get(k)]
            if earlier.get("schedule") != wire.get("schedule"):
                changed.append("schedule")
            raise click.ClickException(
                f"{files.root} was started with a different spec (changed: {', '.join(changed)}); "
                "bump spec.version to render a new version, or restore the manifest to resume"
            )
        if grown:
            files.write_bytes(rel, (json.dumps({"spec": wire}, indent=2) + "\n").encode())
        return
    files.write_bytes(rel, (json.dumps({"spec": wire}, indent=2) + "\n").encode())


def _grown_schedule(files: Any, earlier: dict[str, Any], wire: dict[str, Any]) -> bool | None:
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
            f"spec.samples: {files.root} ends with a short shard ({int(earlier['samples']) % size} of {size} samples);"
            " growing it would change a committed shard: bump spec.version instead")
    committed = [int(p.rsplit("/", 1)[-1].split(".")[0]) for p in files.list("manifests") if p.endswith(".json")]
    checkpoints = [int(p.rsplit("/", 1)[-1].split(".")[0]) for p in files.list("checkpoints")
                   if p.endswith(".json")]
    next_shard = max([*committed, *checkpoints], default=-1) + 1
    problems = transition_problems({"spec": earlier, "status": {"nextShard": next_shard}}, {"spec": wire},
                                   assume_started=True)
    if problems:
        raise click.ClickException(f"{files.root}: " + "; ".join(problems))
    return True


def _how_to_load(root: str, local: bool, doc: dict[str, Any]) -> str:
    from urllib.parse import unquote, urlparse

    where = unquote(urlparse(root).path) if local else root
    last = doc["shards"]["total"] - 1
    shards = f"{where}/shards/{{00000000..{last:08d}}}.tar"
    if not local:
        shards = f"pipe:aws s3 cp {root}/shards/{{00000000..{last:08d}}}.tar -"
    return (
        f"\nData: {where}\n"
        "Load it (depth and seg stay exact 16-bit arrays; see README \"Try it\"):\n"
        "  import io, numpy as np, webdataset as wds, pyarrow.parquet as pq\n"
        "  from PIL import Image\n"
        "  def exact(key, data):  # depth.png, seg.png -> numpy uint16/uint8, never 8-bit RGB\n"
        "      return np.array(Image.open(io.BytesIO(data))) if key.endswith((\"depth.png\", \"seg.png\")) else None\n"
        f"  ds = wds.WebDataset(\"{shards}\", shardshuffle=False).decode(exact, \"pil\")\n"
        f"  index = pq.read_table(\"{where}/index/metadata.parquet\")  # one row per sample"
    )


# --------------------------------------------------------------------------- validate


@click.command("validate")
@click.argument("location")
@click.option("--min-quality", type=click.FloatRange(0, 1), default=None,
              help="Score a sample needs to pass (default: the spec's quality.minScore).")
@click.option("--min-pass-rate", type=click.FloatRange(0, 1), default=None,
              help="Fraction of samples that must pass (default: the spec's quality.minPassRate).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a JSON report here ('-' for stdout).")
@click.option("--manifest", default=None, type=click.Path(dir_okay=False),
              help="Check against this SynthDataset manifest instead of the spec in dataset.json.")
@click.option("--endpoint-url", default=None, help="S3 endpoint (MinIO, R2, ...); default: $AWS_ENDPOINT_URL.")
@click.option("--region", default=None, help="S3 region.")
@click.option("--max-member-mb", type=click.IntRange(min=1), default=256, show_default=True,
              help="Tar members larger than this are reported as hostile.")
@click.option("--max-megapixels", type=click.IntRange(min=1), default=67, show_default=True,
              help="Images larger than this are problems, judged from their PNG header (never decoded).")
@click.option("--sample", "sample", type=click.IntRange(min=1), default=None, metavar="N",
              help="Check N shards picked at random (a huge bucket); missing shards are still all counted.")
@click.option("--seed", type=int, default=None, help="Seed of the --sample pick (default: a new pick each run).")
def validate(location: str, min_quality: float | None, min_pass_rate: float | None, report_path: Path | None,
             manifest: str | None, endpoint_url: str | None, region: str | None, max_member_mb: int,
             max_megapixels: int, sample: int | None, seed: int | None) -> None:
    """Check a rendered dataset (a path, file:// or s3:// URI of {uri}/{dataset}/v{version}).

    Every image is decoded and checked against its pass (size, mode, bit depth, segmentation
    ids against the metadata's objects).

    \b
    Exit codes: 0 the dataset is sound; 1 it has problems (each one listed);
    2 wrong usage, or the location cannot be read (bad URI, unreachable endpoint, no access).
    """
    from parallel_synth.local.checks import CheckOptions, check_dataset

    files = _open_location(location, endpoint_url=endpoint_url, region=region)
    spec = _load(manifest).spec if manifest else None
    opts = CheckOptions(min_quality=min_quality, min_pass_rate=min_pass_rate,
                        max_member_bytes=max_member_mb * 1024 * 1024, sample=sample, seed=seed,
                        max_pixels=max_megapixels * 1_000_000)
    err = sys.stderr.isatty()

    def tick(shard: int, total: int) -> None:
        if err and (shard + 1) % 10 == 0:
            click.echo(f"\rchecked {shard + 1}/{total} shards", err=True, nl=False)

    with _reading(location):
        report = check_dataset(files, spec=spec, options=opts, on_shard=tick)
    if err:
        click.echo("\r" + " " * 40 + "\r", err=True, nl=False)
    doc = report.to_json()
    if report_path is not None:
        text = json.dumps(doc, indent=2) + "\n"
        if str(report_path) == "-":
            click.echo(text, nl=False)
        else:
            report_path.write_text(text)
    out = sys.stderr if str(report_path) == "-" else sys.stdout
    q = doc["quality"]
    rate = "n/a" if q["passRate"] is None else f"{q['passRate']:.1%}"
    sampled = " (a random sample)" if report.sampled else ""
    click.echo(f"{files.root}: {doc['shards']['checked']}/{doc['shards']['expected']} shards{sampled}, "
               f"{report.samples:,} samples, {report.bytes / 1e6:,.1f} MB, quality pass rate {rate} "
               f"(score >= {q['minScore']})", file=out)
    if report.ok:
        click.echo("OK: no problems found", file=out)
        return
    click.echo(f"{report.problem_count} problem(s):", file=out)
    for p in report.problems:
        click.echo(f"  {p}", file=out)
    if report.problem_count > len(report.problems):
        click.echo(f"  ... and {report.problem_count - len(report.problems)} more", file=out)
    sys.exit(EXIT_PROBLEMS)


# --------------------------------------------------------------------------- preview


def s3_options(command: Any) -> Any:
    """``--endpoint-url`` and ``--region`` of the commands that read a finished dataset (also from S3)."""
    command = click.option("--region", default=None, help="S3 region.")(command)
    return click.option("--endpoint-url", default=None, help="S3 endpoint (MinIO, R2, ...).")(command)


@click.command("preview")
@click.argument("location")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write.")
@click.option("--per-category", type=click.IntRange(1, 32), default=6, show_default=True,
              help="Samples per row.")
@click.option("--cell", type=click.IntRange(32, 1024), default=192, show_default=True, help="Cell size in pixels.")
@s3_options
def preview(location: str, out: Path, per_category: int, cell: int, endpoint_url: str | None,
            region: str | None) -> None:
    """Contact sheet: one row per category, masks overlaid, boxes and labels drawn.

    Samples whose images or metadata cannot be used are left out (and counted).

    \b
    Exit codes: 0 written; 1 no sample could be shown (the dataset has problems:
    run synthctl validate); 2 wrong usage, or the location cannot be read or the PNG written.
    """
    from parallel_synth.local.preview import collect_samples, compose_sheet, dataset_title

    files = _open_location(location, endpoint_url=endpoint_url, region=region)
    with _reading(location):
        categories, title, warning = dataset_title(files)
        if warning:
            click.echo(f"warning: {warning}", err=True)
        skipped: list[str] = []
        rows = collect_samples(files, categories=categories, per_row=per_category, skipped=skipped)
    if skipped:
        click.echo(f"left out {len(skipped)} unusable sample(s) or shard(s), e.g. {skipped[0]}", err=True)
    if not any(rows.values()):
        click.echo(f"{files.root}: no usable committed samples to show (run synthctl validate)", err=True)
        sys.exit(EXIT_PROBLEMS)
    sheet = compose_sheet(rows, per_row=per_category, cell=cell, title=title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out)
    except OSError as exc:
        raise _Usage(f"cannot write {out}: {_one_line(exc)}") from None
    shown = sum(len(v) for v in rows.values())
    click.echo(f"wrote {out} ({sheet.width}x{sheet.height}): {shown} samples in {len(rows)} categories")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _storage_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # no boto3: only local paths
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


def _open_location(location: str, *, endpoint_url: str | None, region: str | None) -> Any:
    from parallel_synth.local.store import open_dataset

    errors: tuple[type[BaseException], ...] = (ValueError, *_storage_errors())
    try:
        return open_dataset(location, endpoint_url=endpoint_url, region=region)
    except errors as exc:
        raise _Usage(f"{location}: {_one_line(exc)}") from None


@contextmanager
def _reading(location: str) -> Iterator[None]:
    """Storage that cannot be read (endpoint down, no credentials, no bucket) is exit 2, in one line."""
    try:
        yield
    except _storage_errors() as exc:
        raise _Usage(f"cannot read {location}: {type(exc).__name__}: {_one_line(exc)}") from None


# --------------------------------------------------------------------------- plan


@click.command("plan")
@click.argument("manifest", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--gpu-seconds-per-sample", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Render time of one sample on one GPU (default: spec.estimates, else 60).")
@click.option("--bytes-per-sample", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stored bytes per sample with all passes (default: spec.estimates, else 5e6).")
@click.option("--spot-share", type=click.FloatRange(0, 1), default=None,
              help="Share of GPU-hours on spot in the mix (default: 0.8 with on-demand fallback, "
                   "1 spot only, 0 without spot).")
@click.option("--spot-rework", type=click.FloatRange(0, 1), default=None,
              help="Fraction of spot GPU time redone after preemptions (default 0.03).")
def plan(manifest: str, as_json: bool, gpu_seconds_per_sample: float | None, bytes_per_sample: float | None,
         spot_share: float | None, spot_rework: float | None) -> None:
    """Capacity plan: storage, GPU-hours, wall time, cost and the workers the target needs.

    \b
    Exit codes: 0 planned; 1 the manifest has problems (or cannot be planned);
    2 wrong usage or unreadable manifest.
    """
    from parallel_synth.local.capacity import PlanInputs, capacity_plan

    obj = _load(manifest)
    try:
        result = capacity_plan(obj.spec, inputs=PlanInputs(
            gpu_seconds_per_sample=gpu_seconds_per_sample, bytes_per_sample=bytes_per_sample,
            spot_share=spot_share, spot_rework=spot_rework,
        ), now=datetime.now(UTC))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"dataset": obj.metadata.name, **result.to_json()}, indent=2))
        return
    from parallel_synth.local.capacity_view import render_plan

    render_plan(obj.metadata.name, obj.spec, result)
