"""Helpers shared by the asset tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def upload_dir(client: Any, bucket: str, prefix: str, root: Path) -> None:
    """Copy a local folder to s3://bucket/prefix/ (keys keep the relative paths)."""
    for p in sorted(root.rglob("*")):
        if p.is_file():
            client.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(root).as_posix()}")
