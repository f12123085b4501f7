"""``synthctl preview``: a contact sheet of samples with masks and boxes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from parallel_synth.commands.common import OutPath, Usage, open_location, reading, refuse_inside, s3_options
from synth_contract.validation import EXIT_PROBLEMS, one_line


@click.command("preview")
@click.argument("location")
@click.option("--out", "out", type=OutPath(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write (never inside the dataset it reads).")
@click.option("--per-category", type=click.IntRange(1, 32), default=6, show_default=True,
              help="Samples per row.")
@click.option("--cell", type=click.IntRange(32, 1024), default=192, show_default=True, help="Cell size in pixels.")
@s3_options
def preview(location: str, out: Path, per_category: int, cell: int, endpoint_url: str | None,
            region: str | None, s3_timeout: float) -> None:
    """Contact sheet: one row per category, masks overlaid, boxes and labels drawn.

    Samples whose images or metadata cannot be used are left out (and counted).

    \b
    Exit codes: 0 written; 1 no sample could be shown (the dataset has problems:
    run synthctl validate); 2 wrong usage, or the location cannot be read or the PNG written.
    """
    from parallel_synth.dataset.preview import collect_samples, compose_sheet, dataset_title

    files = open_location(location, endpoint_url=endpoint_url, region=region, timeout=s3_timeout)
    refuse_inside(out, files)
    with reading(location):
        categories, title, warning = dataset_title(files)
        if warning:
            click.echo(f"warning: {warning}", err=True)
        skipped: list[str] = []
        rows = collect_samples(files, categories=categories, per_row=per_category, skipped=skipped)
    if skipped:
        click.echo(f"left out {len(skipped)} unusable sample(s) or shard(s), e.g. {skipped[0]}", err=True)
    if not any(rows.values()):
        click.echo(f"{files.uri}: no usable committed samples to show (run synthctl validate)", err=True)
        sys.exit(EXIT_PROBLEMS)
    sheet = compose_sheet(rows, per_row=per_category, cell=cell, title=title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(out)
    except OSError as exc:
        raise Usage(f"cannot write {out}: {one_line(exc)}") from None
    shown = sum(len(v) for v in rows.values())
    click.echo(f"wrote {out} ({sheet.width}x{sheet.height}): {shown} samples in {len(rows)} categories")
