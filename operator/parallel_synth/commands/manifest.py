"""``synthctl validate-manifest``: check every SynthDataset in a manifest file (and a transition)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from synth_contract.validation import (
    EXIT_PROBLEMS,
    EXIT_USAGE,
    find_datasets,
    one_line,
    read_documents,
    validate_document,
)


@click.command("validate-manifest")
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
            problem = _status_problem(raw.get("status"))
            if problem:
                click.echo(f"{old_file}: {problem}", err=True)
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


def _status_problem(status: Any) -> str | None:
    """Why the old object's ``status`` cannot say how far the dataset got (the transition rule reads
    ``status.nextShard``), or None."""
    if status is None:
        return None
    if not isinstance(status, dict):
        return f"status: must be a mapping, got {type(status).__name__}"
    shards = status.get("shards")
    if shards is not None and not isinstance(shards, dict):
        return f"status.shards: must be a mapping, got {type(shards).__name__}"
    for where, value in (("status.nextShard", status.get("nextShard")),
                         ("status.shards.completed", (shards or {}).get("completed"))):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53):
            return f"{where}: {str(value)[:40]!r} is not allowed: must be an integer >= 0"
    return None
