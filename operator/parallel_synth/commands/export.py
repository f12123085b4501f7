"""``synthctl export``: a rendered dataset as COCO, BOP or NeRF (``dataset.export``, streaming)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from parallel_synth.commands.common import READ_ATTEMPTS, s3_options
from parallel_synth.dataset.export import FORMATS, export_dataset
from synth_contract.validation import EXIT_PROBLEMS, EXIT_USAGE


@click.command("export")
@click.argument("location")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write.")
@click.option("--images", is_flag=True, help="COCO/BOP: also write the RGB images (NeRF always does).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@s3_options
def export(location: str, fmt: str, out: Path, images: bool, progress: bool | None, endpoint_url: str | None,
           region: str | None) -> None:
    """Export a rendered dataset (path, file:// or s3:// of {uri}/{dataset}/v{version}) as COCO, BOP or NeRF."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from parallel_synth.dataset.files import committed_shards
    from synth_contract.store import open_store

    try:
        files = open_store(location, endpoint_url=endpoint_url, region=region, attempts=READ_ATTEMPTS)
        if not committed_shards(files):
            click.echo(f"{location}: no committed shards (manifests/*.json) to export", err=True)
            sys.exit(EXIT_PROBLEMS)
    except Exception as exc:  # a bad URI, missing credentials, an unreachable endpoint: all input problems
        click.echo(f"{location}: cannot read the dataset: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    show = sys.stderr.isatty() if progress is None else progress
    bar = Progress(TextColumn(f"export {fmt}"), BarColumn(), MofNCompleteColumn(), TextColumn("shards"),
                   TimeRemainingColumn(), console=Console(stderr=True), disable=not show)
    with bar:
        task = bar.add_task("export", total=None)
        try:
            stats = export_dataset(files, fmt, out, images=images,
                                   on_shard=lambda done, total: bar.update(task, completed=done, total=total))
        except ValueError as exc:  # a sample without what the format needs, a damaged shard
            click.echo(f"{location}: {exc}", err=True)
            sys.exit(EXIT_PROBLEMS)
        except OSError as exc:
            click.echo(f"--out {out}: cannot write: {exc}", err=True)
            sys.exit(EXIT_USAGE)
    what = {"coco": "annotations", "bop": "object poses", "nerf": "frames"}[fmt]
    skipped = f" ({stats.skipped:,} samples without views left out)" if stats.skipped else ""
    click.echo(f"wrote {out} ({fmt}): {stats.samples:,} samples from {stats.shards:,} shards, "
               f"{stats.annotations:,} {what}, {len(stats.classes)} classes{skipped}")
