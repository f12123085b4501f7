"""``synthctl``: the command line of parallel-synth.

Each subcommand lives in the module that owns its feature and is imported only when it runs,
so ``synthctl --help`` is fast and ``synthctl crds`` does not import Blender or kopf.
"""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from parallel_synth import crdgen
from synth_contract.validation import (
    EXIT_PROBLEMS,
    EXIT_USAGE,
    find_datasets,
    one_line,
    read_documents,
    validate_document,
)

# name -> ("module:attribute", one-line help shown by `synthctl --help`)
_LAZY: dict[str, tuple[str, str]] = {
    "operator": ("parallel_synth.cmd_operator:operator", "Run the operator (kopf run options pass through)."),
    "generate": ("parallel_synth.local.cli:generate", "Render a dataset locally with a process pool."),
    "validate": ("parallel_synth.local.cli:validate", "Check a rendered dataset; non-zero exit on any problem."),
    "preview": ("parallel_synth.local.cli:preview", "Contact sheet of samples with masks and boxes."),
    "plan": ("parallel_synth.local.cli:plan", "Capacity plan: storage, GPU-hours, cost, workers."),
    "render-sample": ("synth_render.cli:render_sample", "Re-render one sample by its global index."),
    "simulate": ("parallel_synth.cmd_simulate:simulate", "Simulate a fleet on a simulated clock."),
    "index": ("parallel_synth.cmd_index:index", "Write a finished dataset's index and dataset.json."),
    "export": ("parallel_synth.local.export:export", "Export a dataset as COCO, BOP or NeRF (streaming)."),
    "report": ("parallel_synth.cmd_report:report", "HTML report: balance, coverage, quality, worst samples, cost."),
    "assets": ("parallel_synth.cmd_assets:assets", "Check an asset library: classes, sizes, licences, problems."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY:
            target, _ = _LAZY[cmd_name]
            module, attr = target.split(":")
            cmd: click.Command = getattr(importlib.import_module(module), attr)
            return cmd
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in _LAZY:
                rows.append((name, _LAZY[name][1]))
            else:
                cmd = super().get_command(ctx, name)
                rows.append((name, cmd.get_short_help_str(80) if cmd else ""))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="parallel-synth", prog_name="synthctl")
def cli() -> None:
    """parallel-synth: synthetic image datasets, from a laptop to a spot GPU fleet.

    \b
    Quick start:
      synthctl generate examples/quickstart.yaml --out ./data
      synthctl validate ./data/quickstart/v1
      synthctl preview ./data/quickstart/v1 --out grid.png

    \b
    Exit codes (every command):
      0  ok
      1  the thing checked has problems (a manifest, a dataset, failed shards)
      2  wrong usage, or the input cannot be read (or the output written)
    """


@cli.command("crds")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to write one YAML file per CRD (default: print to stdout).")
def crds(out: Path | None) -> None:
    """Write the CRDs generated from the API models."""
    docs = crdgen.all_crds()
    if out is None:
        click.echo("---\n".join(crdgen.render_yaml(d) for d in docs.values()), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (out / name).write_text(crdgen.render_yaml(doc))
        click.echo(f"wrote {out / name}")


@cli.command("validate-manifest")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--old", "old_file", type=click.Path(dir_okay=False), default=None,
              help="The manifest (or `kubectl get -o yaml` output) it replaces: apply the CRD's transition rule "
                   "(seed, shardSize, render, categories, schedule segments frozen once started, unless version "
                   "changes). Without a status, the old dataset is taken as started.")
def validate_manifest(file: str, old_file: str | None) -> None:
    """Check every SynthDataset in a manifest file; prints each problem with its field path.

    \b
    Exit codes: 0 every SynthDataset is valid; 1 a document has problems;
    2 the file cannot be read (YAML error, too large) or holds no SynthDataset.
    """
    olds: dict[tuple[str, str], dict[str, Any]] = {}
    if old_file is not None:
        try:
            old_docs = find_datasets(read_documents(old_file))
        except Exception as exc:
            click.echo(f"{old_file}: cannot read manifest: {one_line(exc)}", err=True)
            sys.exit(EXIT_USAGE)
        for _, raw in old_docs:
            obj, errors = validate_document(raw, now=datetime.now(UTC))
            if obj is None:
                click.echo(f"{old_file}: the old manifest is not valid: {errors[0] if errors else '?'}", err=True)
                sys.exit(EXIT_USAGE)
            olds[(obj.metadata.name, obj.metadata.namespace or "")] = {
                **obj.wire(), **({"status": raw["status"]} if isinstance(raw.get("status"), dict) else {})}
    try:
        docs = read_documents(file)
    except Exception as exc:  # YAML errors, aliases, size, nesting: all user input
        click.echo(f"{file}: cannot read manifest: {one_line(exc)}", err=True)
        sys.exit(EXIT_USAGE)
    found = find_datasets(docs)
    if not found:
        click.echo(f"{file}: cannot read manifest: no document with kind: SynthDataset in it", err=True)
        sys.exit(EXIT_USAGE)
    bad = 0
    for i, raw in found:
        where = f"{file}" if len(docs) == 1 else f"{file} (document {i + 1})"
        obj, errors = validate_document(raw, now=datetime.now(UTC))
        if errors or obj is None:
            bad += 1
            click.echo(f"{where}: {len(errors)} problem(s):", err=True)
            for e in errors:
                click.echo(f"  {e}", err=True)
            continue
        spec = obj.spec
        old = olds.get((obj.metadata.name, obj.metadata.namespace or ""))
        if old is not None:
            from synth_contract.immutability import transition_problems

            problems = transition_problems(old, obj.wire(), assume_started="status" not in old)
            if problems:
                bad += 1
                click.echo(f"{where}: {len(problems)} problem(s) replacing {old_file}:", err=True)
                for p in problems:
                    click.echo(f"  {p}", err=True)
                continue
        click.echo(
            f"{where}: valid SynthDataset {obj.metadata.name!r}: {spec.samples:,} samples, "
            f"{len(spec.categories)} categories, shardSize {spec.shard_size}, output {spec.output.uri}"
        )
    if bad:
        sys.exit(EXIT_PROBLEMS)


def main() -> None:
    cli(prog_name="synthctl")


if __name__ == "__main__":
    main()
