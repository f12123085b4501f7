"""What the synthctl commands share: exit codes, usage errors in one line, opening a dataset location,
and the outputs a command may write (never inside the dataset it reads, never an empty path)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from synth_contract.store import FileStore, Store
from synth_contract.validation import EXIT_USAGE, one_line

READ_ATTEMPTS = 2
"""Tries of each S3 call when a command reads a dataset: an unreachable endpoint is an error in seconds."""
S3_TIMEOUT_ENV = "SYNTHCTL_S3_TIMEOUT"
DEFAULT_S3_TIMEOUT = 20.0
"""Seconds to wait for an S3 connection and for each response (an endpoint that accepts and never
answers is an error after ``READ_ATTEMPTS`` of these, not a hang)."""


class Usage(click.ClickException):
    """Wrong usage or an input/output that cannot be used: exit 2."""

    exit_code = EXIT_USAGE


class OutPath(click.Path):
    """``click.Path`` that refuses an empty path (``--out ''`` would otherwise mean the working directory)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path is not allowed: name the file or folder to write", param, ctx)
        return super().convert(value, param, ctx)


class FiniteFloat(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and ``inf`` (Python's float() takes both, and
    every range check passes on a NaN)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not allowed: a finite number{self._range_text()}", param, ctx)
        return super().convert(number, param, ctx)

    def _range_text(self) -> str:
        lo = "" if self.min is None else f"{'>' if self.min_open else '>='} {self.min:g}"
        hi = "" if self.max is None else f"{'<' if self.max_open else '<='} {self.max:g}"
        return f" {' and '.join(t for t in (lo, hi) if t)}" if lo or hi else ""


def s3_options(command: Any) -> Any:
    """``--endpoint-url``, ``--region`` and ``--timeout`` of the commands that read a finished dataset."""
    command = click.option("--timeout", "s3_timeout", type=click.FloatRange(0.1, 3600), default=DEFAULT_S3_TIMEOUT,
                           envvar=S3_TIMEOUT_ENV, show_default=True,
                           help=f"S3: seconds to wait for a connection and each response (${S3_TIMEOUT_ENV}).")(command)
    command = click.option("--region", default=None, help="S3 region.")(command)
    return click.option("--endpoint-url", default=None,
                        help="S3 endpoint (MinIO, R2, ...); default: $AWS_ENDPOINT_URL.")(command)


def storage_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # no boto3: only local paths
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


def _read_client(endpoint_url: str | None, region: str | None, timeout: float) -> Any:
    """An S3 client for reading a dataset interactively: short timeouts, few tries."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(retries={"total_max_attempts": READ_ATTEMPTS, "mode": "standard"},
                      connect_timeout=timeout, read_timeout=timeout),
    )


def open_location(location: str, *, endpoint_url: str | None, region: str | None,
                  timeout: float = DEFAULT_S3_TIMEOUT) -> Store:
    """The store of a dataset given as a path, file:// or s3:// URI; a bad one is exit 2."""
    from synth_contract.store import open_store

    errors: tuple[type[BaseException], ...] = (ValueError, *storage_errors())
    try:
        client = _read_client(endpoint_url, region, timeout) if location.startswith("s3://") else None
        files = open_store(location, endpoint_url=endpoint_url, region=region, client=client, attempts=1)
    except errors as exc:
        raise Usage(f"{location}: {one_line(exc)}") from None
    if isinstance(files, FileStore):
        from parallel_synth.dataset.files import GuardedFileStore

        if not files.root.is_dir():
            what = "does not exist" if not os.path.lexists(files.root) else "is not a folder"
            raise Usage(f"{location}: {what} (a dataset is a folder {{uri}}/{{dataset}}/v{{version}})")
        return GuardedFileStore(files.root)
    return files


def refuse_inside(out: Path, files: Store, *, option: str = "--out") -> None:
    """Exit 2 when ``out`` (symlinks resolved, also in its missing parts) is inside the dataset ``files`` reads."""
    if not isinstance(files, FileStore):
        return
    root = os.path.realpath(files.root)
    target = os.path.realpath(out)
    if target == root or target.startswith(root + os.sep):
        raise Usage(f"{option} {out}: is inside the dataset it reads ({root}); write it somewhere else")


@contextmanager
def reading(location: str) -> Iterator[None]:
    """Storage that cannot be read (endpoint down, no credentials, no bucket) is exit 2, in one line."""
    try:
        yield
    except storage_errors() as exc:
        raise Usage(f"cannot read {location}: {type(exc).__name__}: {one_line(exc)}") from None
