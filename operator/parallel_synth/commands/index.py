"""``synthctl index``: write a finished dataset's index and ``dataset.json``.

Local mode writes the index itself when ``generate`` ends. On a cluster the operator runs this
command as a small CPU-only Job (``{dataset}-index``, same image and credentials as the
renderer) once every shard is committed, so a bucket filled by the operator holds the same
files as one filled locally. It reads the shards' manifests and index parts (never a tar, unless
a shard has no part), one shard at a time, so memory does not grow with the dataset.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from pydantic import ValidationError

from synth_contract import layout
from synth_contract.api import SynthDatasetSpec
from synth_contract.validation import (
    EXIT_PROBLEMS,
    EXIT_USAGE,
    errors_from_pydantic,
    find_dataset,
    load_manifest_text,
    spec_from_json,
)


def _spec(manifest: str | None) -> tuple[SynthDatasetSpec, str | None]:
    if manifest:
        doc = find_dataset(load_manifest_text(Path(manifest).read_text()))
        raw, name = doc.get("spec"), (doc.get("metadata") or {}).get("name")
    else:
        text = os.environ.get("SYNTH_SPEC_JSON", "")
        if not text:
            raise click.UsageError("give --manifest FILE or set SYNTH_SPEC_JSON")
        spec = spec_from_json(text)
        doc = json.loads(text)  # a whole object (not what the operator passes) also names the dataset
        return spec, ((doc.get("metadata") or {}).get("name") if "kind" in doc else None)
    try:
        return SynthDatasetSpec.model_validate(raw), name
    except ValidationError as exc:
        raise click.UsageError("; ".join(str(e) for e in errors_from_pydantic(exc, prefix="spec"))) from None


@click.command("index")
@click.argument("location", required=False)
@click.option("--dataset", "dataset", default=None, help="Dataset name (default: the manifest's).")
@click.option("--manifest", default=None, type=click.Path(dir_okay=False), help="The SynthDataset manifest.")
@click.option("--rebuild-from-shards", is_flag=True,
              help="Read the tar of a shard whose index part is missing or damaged (only that shard's).")
@click.option("--live", is_flag=True,
              help="Print dataset.json's figures (counts, balance, quality, coverage) over the shards committed "
                   "so far, from manifests and index parts; writes nothing (the run may go on).")
def index(location: str | None, dataset: str | None, manifest: str | None, rebuild_from_shards: bool,
          live: bool) -> None:
    """Write the index (from the shards' index parts) and dataset.json of a finished dataset.

    \b
    Exit codes: 0 written; 1 a shard is not committed or its index part is missing, truncated
    or does not match its manifest (named; --rebuild-from-shards reads that shard's tar instead);
    2 wrong usage or bad configuration.
    """
    from parallel_synth.dataset.index import IndexProblem, live_summary, write_index
    from synth_contract.store import open_store

    try:
        spec, name = _spec(manifest)
    except (click.UsageError, ValueError, OSError) as exc:
        click.echo(f"synthctl index: bad configuration: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    dataset = dataset or name
    if not dataset:
        click.echo("synthctl index: --dataset is required", err=True)
        sys.exit(EXIT_USAGE)
    root = location or layout.dataset_root(spec.output.uri, dataset, spec.version)
    files = open_store(root, endpoint_url=spec.output.endpoint_url, region=spec.output.region)
    if live:
        try:
            doc = live_summary(spec, dataset, files, now=datetime.now(UTC))
        except Exception as exc:
            click.echo(f"synthctl index --live: {root}: {exc}", err=True)
            sys.exit(EXIT_PROBLEMS)
        click.echo(json.dumps(doc, indent=2))
        return
    try:  # reads every manifest: a shard not committed yet fails here, nothing is half-written
        doc = write_index(spec, dataset, files, now=datetime.now(UTC), rebuild_from_shards=rebuild_from_shards)
    except IndexProblem as exc:
        click.echo(f"synthctl index: {exc}", err=True)
        sys.exit(EXIT_PROBLEMS)
    except Exception as exc:
        click.echo(json.dumps({"msg": "index failed", "dataset": dataset, "error": str(exc)}), err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(json.dumps({"msg": "index written", "dataset": dataset, "root": root,
                           "samples": doc["samples"]["completed"], "source": doc["index"]["source"],
                           "bytesReadPerSample": doc["index"]["bytesReadPerSample"]}))
