"""``synthctl validate``: check a rendered dataset; a non-zero exit on any problem."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from parallel_synth.commands.common import open_location, reading, s3_options
from synth_contract.validation import EXIT_PROBLEMS, load_dataset


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
@click.option("--max-member-mb", type=click.IntRange(min=1), default=256, show_default=True,
              help="Tar members larger than this are reported as hostile.")
@click.option("--max-megapixels", type=click.IntRange(min=1), default=67, show_default=True,
              help="Images larger than this are problems, judged from their PNG header (never decoded).")
@click.option("--sample", "sample", type=click.IntRange(min=1), default=None, metavar="N",
              help="Check N shards picked at random (a huge bucket); missing shards are still all counted.")
@click.option("--seed", type=int, default=None, help="Seed of the --sample pick (default: a new pick each run).")
@s3_options
def validate(location: str, min_quality: float | None, min_pass_rate: float | None, report_path: Path | None,
             manifest: str | None, endpoint_url: str | None, region: str | None, max_member_mb: int,
             max_megapixels: int, sample: int | None, seed: int | None, s3_timeout: float) -> None:
    """Check a rendered dataset (a path, file:// or s3:// URI of {uri}/{dataset}/v{version}).

    Every image is decoded and checked against its pass (size, mode, bit depth, segmentation
    ids against the metadata's objects).

    \b
    Exit codes: 0 the dataset is sound; 1 it has problems (each one listed);
    2 wrong usage, or the location cannot be read (bad URI, unreachable endpoint, no access).
    """
    from parallel_synth.dataset.checks import CheckOptions, check_dataset

    files = open_location(location, endpoint_url=endpoint_url, region=region, timeout=s3_timeout)
    spec = load_dataset(manifest).spec if manifest else None
    opts = CheckOptions(min_quality=min_quality, min_pass_rate=min_pass_rate,
                        max_member_bytes=max_member_mb * 1024 * 1024, sample=sample, seed=seed,
                        max_pixels=max_megapixels * 1_000_000)
    err = sys.stderr.isatty()

    def tick(shard: int, total: int) -> None:
        if err and (shard + 1) % 10 == 0:
            click.echo(f"\rchecked {shard + 1}/{total} shards", err=True, nl=False)

    with reading(location):
        report = check_dataset(files, spec=spec, options=opts, on_shard=tick)
        _check_summary(files, report)
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
    click.echo(f"{files.uri}: {doc['shards']['checked']}/{doc['shards']['expected']} shards{sampled}, "
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


def _check_summary(files: Any, report: Any) -> None:
    """``dataset.json`` with the shape the other commands read (export, preview, report use the same loader)."""
    from parallel_synth.dataset.files import BadSummary, load_summary
    from synth_contract.layout import DATASET_JSON

    try:
        load_summary(files)
    except BadSummary as exc:
        if not any(p.code == "bad-dataset-json" for p in report.problems):
            report.add("bad-dataset-json", DATASET_JSON, str(exc).removeprefix(f"{DATASET_JSON}: "))
