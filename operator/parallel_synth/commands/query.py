"""``synthctl query DIR_OR_URI "SQL"``: SQL over a dataset's index with DuckDB (embedded, no server).

The index is the table ``samples`` (the columns of ``index/metadata.parquet``). While the run
goes on it is the index parts of the shards committed so far; once ``dataset.json`` is written,
the finished index. Files are read through a ``pyarrow.dataset`` (local disk or pyarrow's own S3
client: DuckDB needs no extension download), so DuckDB pushes column and row filters down and
reads only the columns a query names.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any
from urllib.parse import urlparse

import click

from parallel_synth.commands.common import Usage, open_location, reading, s3_options
from synth_contract.store import FileStore, S3Store, Store
from synth_contract.validation import EXIT_PROBLEMS, one_line

MAX_CELL = 60
"""Text cells wider than this are cut in the table view (``--json`` prints them whole)."""


def arrow_dataset(files: Store, rels: list[str], *, endpoint_url: str | None, region: str | None,
                  timeout: float = 20.0) -> Any:
    """A ``pyarrow.dataset`` over ``rels`` of a local or S3 store, in the index schema."""
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    from synth_contract.index_rows import INDEX_SCHEMA

    if isinstance(files, FileStore):
        return ds.dataset([os.path.join(files.root, r) for r in rels], format="parquet", schema=INDEX_SCHEMA)
    assert isinstance(files, S3Store)
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    fs = pafs.S3FileSystem(endpoint_override=endpoint, connect_timeout=timeout, request_timeout=timeout,
                           region=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                           or "us-east-1")
    base = f"{files.bucket}/{files.prefix}".rstrip("/")
    return ds.dataset([f"{base}/{r}" for r in rels], format="parquet", schema=INDEX_SCHEMA, filesystem=fs)


def run_query(files: Store, sql: str, *, endpoint_url: str | None = None, region: str | None = None,
              source: str = "auto", timeout: float = 20.0) -> tuple[str, int, list[str], list[tuple[Any, ...]]]:
    """(source, files, column names, rows) of ``sql`` over the table ``samples``."""
    import duckdb

    from parallel_synth.dataset.index import index_files

    kind, rels = index_files(files, source=source)
    if isinstance(files, FileStore):  # a local file's footer costs nothing: refuse a hostile one before DuckDB reads it
        for rel in rels:
            problems = _footer(os.path.join(files.root, rel), rel)
            if problems:
                raise BadIndexFile(problems[0])
    con = duckdb.connect(":memory:")
    if rels:
        con.register("samples", arrow_dataset(files, rels, endpoint_url=endpoint_url, region=region,
                                              timeout=timeout))
    else:  # nothing committed yet: an empty table with the index's columns
        import pyarrow as pa

        from synth_contract.index_rows import INDEX_SCHEMA

        con.register("samples", pa.Table.from_pylist([], schema=INDEX_SCHEMA))
    result = con.sql(sql)
    if result is None:
        return kind, len(rels), [], []
    return kind, len(rels), list(result.columns), result.fetchall()


class BadIndexFile(ValueError):
    """An index file is not the index's parquet (wrong schema, a huge row group, not parquet): exit 1."""


def _footer(path: str, rel: str) -> list[str]:
    from synth_contract.index_rows import footer_problems

    return footer_problems(path, rows=None, where=rel)


def _cell(value: Any) -> str:
    text = "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table_text(columns: list[str], rows: list[tuple[Any, ...]], *, max_rows: int) -> str:
    """A plain aligned text table (what the terminal shows)."""
    shown = [[_cell(v) for v in row] for row in rows[:max_rows]]
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows:,} more rows (--max-rows, or --json for all)")
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@click.command("query")
@click.argument("location")
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list of objects.")
@click.option("--max-rows", type=click.IntRange(min=1), default=50, show_default=True,
              help="Rows shown in the table view.")
@click.option("--source", type=click.Choice(["auto", "index", "parts"]), default="auto", show_default=True,
              help="auto: the finished index if written, else the committed shards' index parts (live).")
@s3_options
def query(location: str, sql: str, as_json: bool, max_rows: int, source: str, endpoint_url: str | None,
          region: str | None, **s3: Any) -> None:
    """Run SQL (DuckDB) over the index: the table is `samples`, one row per sample.

    \b
    Examples:
      synthctl query ./data/quickstart/v1 "SELECT category, count(*) FROM samples GROUP BY 1"
      synthctl query s3://bucket/ds/v1 "SELECT key, score FROM samples ORDER BY score LIMIT 10"

    \b
    Exit codes: 0 ran; 1 an index file is damaged (not the index schema, unreadable);
    2 wrong usage (bad SQL) or the dataset cannot be read.
    """
    import duckdb
    import pyarrow as pa

    if not sql.strip():
        raise Usage("SQL: empty query (e.g. \"SELECT count(*) FROM samples\")")
    if urlparse(location).scheme not in ("", "file", "s3"):
        raise Usage(f"{location}: unsupported location: a path, file:///path or s3://bucket/prefix")
    timeout = float(s3.get("s3_timeout") or 20.0)  # --timeout of s3_options (where it has one)
    files = open_location(location, endpoint_url=endpoint_url, region=region)
    with reading(location):
        try:
            kind, n, columns, rows = run_query(files, sql, endpoint_url=endpoint_url, region=region, source=source,
                                               timeout=timeout)
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.InvalidInputException, duckdb.NotImplementedException) as exc:
            if "registered as 'samples'" not in str(exc):  # else: an index file that cannot be scanned
                raise Usage(f"SQL: {one_line(exc, 300)}") from None
            click.echo(f"synthctl query: {location}: an index file cannot be read: {one_line(exc, 300)}", err=True)
            sys.exit(EXIT_PROBLEMS)
        except BadIndexFile as exc:
            click.echo(f"synthctl query: {location}: {exc}", err=True)
            sys.exit(EXIT_PROBLEMS)
        except (pa.ArrowException, duckdb.Error) as exc:  # a part that is not the index's parquet
            click.echo(f"synthctl query: {location}: an index file cannot be read: {one_line(exc, 300)}", err=True)
            sys.exit(EXIT_PROBLEMS)
    if as_json:
        click.echo(json.dumps([_jsonable(dict(zip(columns, r, strict=True))) for r in rows], indent=1,
                              allow_nan=False))
        return
    click.echo(table_text(columns, rows, max_rows=max_rows))
    click.echo(f"({len(rows):,} rows; samples = {n:,} {'index file(s)' if kind == 'index' else 'committed parts'})",
               err=True)
