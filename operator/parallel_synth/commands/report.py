"""``synthctl report DIR_OR_URI --out report.html``: the thin CLI over ``dataset.report``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from parallel_synth.commands.common import OutPath, Usage, open_location, reading, refuse_inside, s3_options
from synth_contract.validation import one_line


@click.command("report")
@click.argument("location")
@click.option("--out", "out", type=OutPath(dir_okay=False, path_type=Path), required=True,
              help="HTML file to write (self-contained: plots and thumbnails inline; never inside the dataset).")
@click.option("--worst", type=click.IntRange(0, 64), default=8, show_default=True,
              help="Thumbnails of this many worst kept and quarantined samples.")
@s3_options
def report(location: str, out: Path, worst: int, endpoint_url: str | None, region: str | None,
           s3_timeout: float) -> None:
    """One HTML page: category balance, coverage and diversity, quality with the worst samples, cost.

    \b
    Exit codes: 0 written; 2 wrong usage, the dataset is not finished (no dataset.json) or
    cannot be read, or the HTML cannot be written.
    """
    from parallel_synth.dataset.report import ReportInput, gather, render_html

    t0 = time.perf_counter()
    files = open_location(location, endpoint_url=endpoint_url, region=region, timeout=s3_timeout)
    with reading(location):
        try:
            data = gather(files, worst=worst)
        except FileNotFoundError as exc:
            raise Usage(f"{location}: {one_line(exc)}") from None
        except ReportInput as exc:
            raise Usage(f"{location}: {one_line(exc)}") from None
    refuse_inside(out, files)  # after gather: a folder that is no dataset says so first
    for note in data.notes[:10]:
        click.echo(f"warning: {note}", err=True)
    page = render_html(data)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise Usage(f"cannot write {out}: {one_line(exc)}") from None
    click.echo(f"wrote {out} ({len(page) / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f}s: "
               f"{len(data.scores):,} samples, {len(data.quarantined)} quarantined shown")
    sys.exit(0)
