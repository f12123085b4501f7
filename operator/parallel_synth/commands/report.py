"""``synthctl report DIR_OR_URI --out report.html``: the thin CLI over ``dataset.report``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from parallel_synth.commands.common import OutPath, Usage, open_location, reading, refuse_inside, s3_options
from synth_contract.validation import one_line


@click.command("report")
@click.argument("location")
@click.option("--out", "out", type=OutPath(dir_okay=False, path_type=Path), required=True,
              help="HTML file to write (self-contained: plots and thumbnails inline; never inside the dataset).")
@click.option("--worst", type=click.IntRange(0, 64), default=8, show_default=True,
              help="Thumbnails of this many worst kept and quarantined samples.")
@click.option("--manifest", "manifest_file", default=None, type=click.Path(dir_okay=False),
              help="The dataset's SynthDataset manifest: a run still going (no dataset.json yet) is reported "
                   "live from its committed shards (a local run needs none: its local-run.json has the spec).")
@s3_options
def report(location: str, out: Path, worst: int, manifest_file: str | None, endpoint_url: str | None,
           region: str | None, s3_timeout: float) -> None:
    """One HTML page: category balance, coverage and diversity, quality with the worst samples, cost.

    While the run goes on (no dataset.json yet) the page shows the shards committed so far, from
    their manifests and index parts: a local run as it is, any other run with --manifest.

    \b
    Exit codes: 0 written; 2 wrong usage, the dataset is neither finished (no dataset.json) nor
    a run going on (no local-run.json, no --manifest) or cannot be read, or the HTML cannot be written.
    """
    from parallel_synth.dataset.report import ReportInput, gather, render_html

    t0 = time.perf_counter()
    spec = _manifest_spec(manifest_file) if manifest_file else None
    files = open_location(location, endpoint_url=endpoint_url, region=region, timeout=s3_timeout)
    with reading(location):
        try:
            data = gather(files, worst=worst, spec=spec)
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
    live = (f" (live: {data.doc['shards']['completed']:,} of {data.doc['shards']['total']:,} shards committed)"
            if data.doc.get("live") else "")
    click.echo(f"wrote {out} ({len(page) / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f}s: "
               f"{len(data.scores):,} samples, {len(data.quarantined)} quarantined shown{live}")
    sys.exit(0)


def _manifest_spec(path: str) -> Any:
    """The spec of a SynthDataset manifest file; ``Usage`` (exit 2) naming it when it cannot be used."""
    from synth_contract.api import SynthDatasetSpec
    from synth_contract.validation import read_manifest

    try:
        doc = read_manifest(path)
        return SynthDatasetSpec.model_validate((doc or {}).get("spec") if isinstance(doc, dict) else None)
    except (ValueError, OSError, TypeError, RecursionError) as exc:
        raise Usage(f"{path}: not a SynthDataset manifest: {one_line(exc)}") from None
