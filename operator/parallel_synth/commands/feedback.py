"""``synthctl feedback``: per-sample losses in, the manifest with the next schedule segment out.

Reads the user's losses (Parquet, CSV or JSONL with a ``key`` or ``index`` column and ``loss``;
other columns are ignored, except ``dataset`` which must name this dataset), joins them with the
dataset's index (category and ``strata`` of each sample), and writes ``--out``: the manifest with
one appended ``spec.schedule`` segment (more samples where the loss is high, bounded by an
exploration floor and a per-round step cap; ``parallel_synth.dataset.feedback``) and
``spec.samples`` grown by ``--samples``. Existing segments are never touched; the result passes
``synthctl validate-manifest --old MANIFEST`` (checked before writing). Nothing is written when
the losses have problems (exit 1) or an input cannot be read (exit 2).
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from parallel_synth.commands.common import open_location, reading, s3_options
from parallel_synth.dataset import feedback as fb
from synth_contract import layout, planning
from synth_contract.immutability import transition_problems
from synth_contract.validation import EXIT_PROBLEMS, EXIT_USAGE, one_line, read_manifest, validate_document

MAX_LOSS_BYTES = 1024**3
"""A losses file larger than this is refused unread (a billion-sample dataset's losses fit in less)."""


class _NoAliases(yaml.SafeDumper):
    """YAML without anchors/aliases (manifests refuse them: validate-manifest, the API server's YAML)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class _Unreadable(Exception):
    """An input that cannot be read: exit 2."""


class _Problem(Exception):
    """The losses have a problem: exit 1."""


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"synthctl feedback: {message}", err=True)
    sys.exit(code)


def _key_of(value: Any) -> str | None:
    """A sample key as the index writes it; a bare number (a CSV that lost its zeros) is read as the index."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return planning.sample_key(value) if value >= 0 else str(value)
    text = str(value).strip()
    if text.isdigit():
        return planning.sample_key(int(text))
    return text or None


def _loss_of(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_losses(path: str) -> tuple[list[str | None], list[float | None], list[str | None], int]:
    """(keys, losses, dataset column or [], rows) of a losses file; ``_Unreadable`` when it cannot be used."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".jsonl", ".ndjson", ".json"):
        raise _Unreadable(f"{path}: unknown format {suffix or '(no extension)'!r}: give a .parquet, .csv or .jsonl file")
    try:
        if p.stat().st_size > MAX_LOSS_BYTES:
            raise _Unreadable(f"{path}: larger than {MAX_LOSS_BYTES:,} bytes")
        if suffix in (".parquet", ".pq"):
            names = pq.ParquetFile(path).schema_arrow.names
            table = pq.read_table(path, columns=[c for c in ("key", "index", "loss", "dataset") if c in names])
        elif suffix == ".csv":
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types={"key": pa.string(), "dataset": pa.string()},
                include_columns=None, strings_can_be_null=True))
        else:
            table = pajson.read_json(io.BytesIO(p.read_bytes()))
    except _Unreadable:
        raise
    except Exception as exc:  # pyarrow's ArrowInvalid, OSError, ...: the file is not what its name says
        raise _Unreadable(f"{path}: cannot read: {one_line(exc)}") from None
    cols = table.column_names
    if "loss" not in cols:
        raise _Unreadable(f"{path}: no 'loss' column (columns: {', '.join(cols[:10]) or 'none'})")
    if "key" not in cols and "index" not in cols:
        raise _Unreadable(f"{path}: no 'key' or 'index' column to join with the index (columns: {', '.join(cols[:10])})")
    raw_keys = table.column("key" if "key" in cols else "index").to_pylist()
    keys = [_key_of(k) for k in raw_keys]
    raw_losses = table.column("loss").to_pylist()
    losses = [_loss_of(v) for v in raw_losses]
    text = [(i, v) for i, (v, x) in enumerate(zip(raw_losses, losses, strict=True)) if v is not None and x is None]
    if text:
        raise _Problem(f"{path}: {len(text)} loss(es) are not numbers (first: row {text[0][0] + 1}, "
                       f"loss {text[0][1]!r})")
    datasets = [None if d is None else str(d) for d in table.column("dataset").to_pylist()] if "dataset" in cols else []
    return keys, losses, datasets, table.num_rows


def read_index(store: Any) -> tuple[dict[str, tuple[str, dict[str, str | None]]], dict[str, Any]]:
    """{key: (category, strata)} from ``index/metadata.parquet``, and dataset.json; ``_Unreadable`` if absent."""
    import json

    import pyarrow.parquet as pq

    data = store.read_bytes(layout.INDEX_PARQUET)
    doc_bytes = store.read_bytes(layout.DATASET_JSON)
    if data is None or doc_bytes is None:
        raise _Unreadable(f"{store.uri}: no {layout.INDEX_PARQUET} or {layout.DATASET_JSON}: "
                          "run `synthctl index` (local runs write them when they finish)")
    try:
        table = pq.read_table(io.BytesIO(data), columns=["key", "category", "strata"])
        doc = json.loads(doc_bytes)
    except Exception as exc:
        raise _Unreadable(f"{store.uri}: the index cannot be read: {one_line(exc)}") from None
    rows = {}
    for r in table.to_pylist():
        rows[str(r["key"])] = (str(r["category"]), dict(r["strata"] or {}))
    return rows, doc if isinstance(doc, dict) else {}


@click.command("feedback")
@click.argument("location")
@click.option("--losses", "losses_file", required=True, type=click.Path(dir_okay=False),
              help="Per-sample losses: .parquet, .csv or .jsonl with a key (or index) and a loss column.")
@click.option("--manifest", "manifest_file", required=True, type=click.Path(dir_okay=False),
              help="The dataset's current SynthDataset manifest (or `kubectl get sds NAME -o yaml`).")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Where to write the manifest with the new segment (may be --manifest itself).")
@click.option("--samples", "add", type=click.IntRange(1, 10**10), default=None,
              help="Samples the new segment adds (default: as many as the dataset has now).")
@click.option("--prior", type=click.FloatRange(0, 1e6), default=fb.Settings.prior, show_default=True,
              help="Shrinkage: pseudo-samples at the parent's mean loss added to every estimate.")
@click.option("--floor", type=click.FloatRange(0, 1, max_open=True), default=fb.Settings.floor, show_default=True,
              help="Exploration floor: no value under this fraction of its uniform share.")
@click.option("--max-step", type=click.FloatRange(1, 100, min_open=True), default=fb.Settings.max_step,
              show_default=True, help="A share moves by at most this factor per round.")
@click.option("--min-rows", type=click.IntRange(1, 10**9), default=fb.Settings.min_rows, show_default=True,
              help="Fewer joined losses than this: exit 1, no segment.")
@s3_options
def feedback(location: str, losses_file: str, manifest_file: str, out_file: str, add: int | None, prior: float,
             floor: float, max_step: float, min_rows: int, endpoint_url: str | None, region: str | None,
             **s3: Any) -> None:
    """Write the next schedule segment from per-sample training losses.

    \b
    Exit codes: 0 written (a table of what changed and why on stdout); 1 the losses have problems
    (unknown, duplicate or another dataset's keys, NaN or negative losses, too few rows);
    2 an input cannot be read or does not fit (manifest, index, losses file). Nothing is
    written unless the exit code is 0.
    """
    settings = fb.Settings(prior=prior, floor=floor, max_step=max_step, min_rows=min_rows)
    try:
        raw = read_manifest(manifest_file)
    except Exception as exc:
        _fail(EXIT_USAGE, f"{manifest_file}: cannot read manifest: {one_line(exc)}")
    obj, errors = validate_document(raw, now=datetime.now(UTC))
    if obj is None:
        _fail(EXIT_USAGE, f"{manifest_file}: not a valid SynthDataset: {errors[0] if errors else '?'}")
    assert obj is not None
    spec, name = obj.spec, obj.metadata.name
    if spec.samples % spec.shard_size:
        _fail(EXIT_USAGE, f"{manifest_file}: spec.samples {spec.samples} is not a multiple of spec.shardSize "
                          f"{spec.shard_size}: the last shard is short, so a new segment cannot start on a fresh shard")
    extra = {"timeout": s3["s3_timeout"]} if s3.get("s3_timeout") else {}
    store = open_location(location, endpoint_url=endpoint_url, region=region, **extra)
    try:
        with reading(location):
            index, doc = read_index(store)
        keys, losses, datasets, _ = read_losses(losses_file)
    except _Unreadable as exc:
        _fail(EXIT_USAGE, str(exc))
    except _Problem as exc:
        _fail(EXIT_PROBLEMS, str(exc))
    if doc.get("name") not in (None, name) or str(doc.get("version", spec.version)) != spec.version:
        _fail(EXIT_USAGE, f"{manifest_file} is dataset {name!r} v{spec.version}, {location} holds "
                          f"{doc.get('name')!r} v{doc.get('version')}")
    problems = fb.loss_problems(keys, losses, known=set(index), dataset=name, datasets=datasets, settings=settings)
    if problems:
        _fail(EXIT_PROBLEMS, f"{losses_file}: " + "; ".join(problems))
    samples = [fb.Sample(key=k, category=index[k][0], strata=index[k][1], loss=float(v))
               for k, v in zip(keys, losses, strict=True) if k is not None and v is not None]
    plan = fb.plan_next(spec, samples, settings)
    start = fb.next_from_shard(spec)
    segment = fb.next_segment(plan, from_shard=start)
    new_doc = fb.appended(raw, segment, samples=start * spec.shard_size + (add or spec.samples))
    new_obj, new_errors = validate_document(new_doc, now=datetime.now(UTC))
    old_wire = obj.wire()
    if new_obj is None or transition_problems(old_wire, new_obj.wire(), assume_started=True):
        why = new_errors[0] if new_errors else transition_problems(old_wire, new_obj.wire(), assume_started=True)[0] \
            if new_obj is not None else "?"
        _fail(EXIT_PROBLEMS, f"the new segment would not be accepted ({why}); nothing written")
    try:
        Path(out_file).write_text(yaml.dump(new_doc, Dumper=_NoAliases, sort_keys=False))
    except OSError as exc:
        _fail(EXIT_USAGE, f"{out_file}: cannot write: {one_line(exc)}")
    click.echo(f"{len(samples):,} losses joined; segment {len(spec.schedule) + 1} from shard {start} "
               f"({new_doc['spec']['samples'] - start * spec.shard_size:,} samples) written to {out_file}")
    for line in fb.format_table(plan):
        click.echo(line)
