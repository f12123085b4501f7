"""``synthctl export``: a rendered dataset as COCO, BOP or NeRF (``dataset.export``, streaming)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from parallel_synth.commands.common import (
    OutPath,
    Usage,
    open_location,
    reading,
    refuse_inside,
    s3_options,
    storage_errors,
)
from parallel_synth.dataset.export import FORMATS, ExportProblem, export_dataset
from synth_contract.validation import EXIT_PROBLEMS, one_line


@click.command("export")
@click.argument("location")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("--out", type=OutPath(file_okay=False, path_type=Path), required=True,
              help="Folder to write (never inside the dataset it reads).")
@click.option("--images", is_flag=True, help="COCO/BOP: also write the RGB images (NeRF always does).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@s3_options
def export(location: str, fmt: str, out: Path, images: bool, progress: bool | None, endpoint_url: str | None,
           region: str | None, s3_timeout: float) -> None:
    """Export a rendered dataset (path, file:// or s3:// of {uri}/{dataset}/v{version}) as COCO, BOP or NeRF.

    \b
    Exit codes: 0 every committed sample exported; 1 the dataset has problems (a sample the
    format cannot use, a damaged shard, members that would have been dropped: each named);
    2 wrong usage, the location cannot be read or --out cannot be written.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from parallel_synth.dataset.files import committed_shards

    files = open_location(location, endpoint_url=endpoint_url, region=region, timeout=s3_timeout)
    refuse_inside(out, files)
    with reading(location):
        if not committed_shards(files):
            click.echo(f"{location}: no committed shards (manifests/*.json) to export", err=True)
            sys.exit(EXIT_PROBLEMS)
    show = sys.stderr.isatty() if progress is None else progress
    bar = Progress(TextColumn(f"export {fmt}"), BarColumn(), MofNCompleteColumn(), TextColumn("shards"),
                   TimeRemainingColumn(), console=Console(stderr=True), disable=not show)
    with bar:
        task = bar.add_task("export", total=None)
        try:
            stats = export_dataset(files, fmt, out, images=images,
                                   on_shard=lambda done, total: bar.update(task, completed=done, total=total))
        except ExportProblem as exc:  # dataset.json unusable: nothing exported
            bar.stop()
            click.echo(f"{location}: {one_line(exc, 600)}", err=True)
            sys.exit(EXIT_PROBLEMS)
        except OSError as exc:  # the dataset's own files are read through checks that name them
            raise Usage(f"--out {out}: cannot write: {one_line(exc)}") from None
        except storage_errors() as exc:
            raise Usage(f"cannot read {location}: {type(exc).__name__}: {one_line(exc)}") from None
    what = {"coco": "annotations", "bop": "object poses", "nerf": "frames"}[fmt]
    skipped = f" ({stats.skipped:,} samples without views left out)" if stats.skipped else ""
    click.echo(f"wrote {out} ({fmt}): {stats.samples:,} samples from {stats.shards:,} shards, "
               f"{stats.annotations:,} {what}, {len(stats.classes)} classes{skipped}")
    if stats.problem_count:
        click.echo(f"{location}: {stats.problem_count:,} problem(s); those samples or members were not exported "
                   "(run synthctl validate):", err=True)
        for p in stats.problems:
            click.echo(f"  {one_line(Exception(p), 400)}", err=True)
        if stats.problem_count > len(stats.problems):
            click.echo(f"  ... and {stats.problem_count - len(stats.problems):,} more", err=True)
        sys.exit(EXIT_PROBLEMS)
