"""What the synthctl commands share: exit codes, usage errors in one line, opening a dataset location."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from synth_contract.store import Store
from synth_contract.validation import EXIT_USAGE, one_line

READ_ATTEMPTS = 2
"""Tries of each S3 call when a command reads a dataset: an unreachable endpoint is an error in seconds."""


class Usage(click.ClickException):
    """Wrong usage or an input/output that cannot be used: exit 2."""

    exit_code = EXIT_USAGE


def s3_options(command: Any) -> Any:
    """``--endpoint-url`` and ``--region`` of the commands that read a finished dataset (also from S3)."""
    command = click.option("--region", default=None, help="S3 region.")(command)
    return click.option("--endpoint-url", default=None,
                        help="S3 endpoint (MinIO, R2, ...); default: $AWS_ENDPOINT_URL.")(command)


def storage_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # no boto3: only local paths
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


def open_location(location: str, *, endpoint_url: str | None, region: str | None) -> Store:
    """The store of a dataset given as a path, file:// or s3:// URI; a bad one is exit 2."""
    from synth_contract.store import open_store

    errors: tuple[type[BaseException], ...] = (ValueError, *storage_errors())
    try:
        return open_store(location, endpoint_url=endpoint_url, region=region, attempts=READ_ATTEMPTS)
    except errors as exc:
        raise Usage(f"{location}: {one_line(exc)}") from None


@contextmanager
def reading(location: str) -> Iterator[None]:
    """Storage that cannot be read (endpoint down, no credentials, no bucket) is exit 2, in one line."""
    try:
        yield
    except storage_errors() as exc:
        raise Usage(f"cannot read {location}: {type(exc).__name__}: {one_line(exc)}") from None
