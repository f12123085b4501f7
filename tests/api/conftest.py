"""Fixtures of the API tests: the smallest manifest a user can write."""

from __future__ import annotations

from typing import Any

import pytest
from builders import SMALL, manifest, wire


@pytest.fixture
def minimal() -> dict[str, Any]:
    """The smallest manifest a user can write: samples, output.uri and image."""
    return manifest(wire(SMALL, samples=100, output={"uri": "s3://my-bucket/data"}), name="tiny")
