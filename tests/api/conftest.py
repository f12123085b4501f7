from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml"))


@pytest.fixture
def minimal() -> dict[str, Any]:
    """The smallest manifest a user can write: samples, output.uri and image."""
    return {
        "apiVersion": "parallelsynth.io/v1alpha1",
        "kind": "SynthDataset",
        "metadata": {"name": "tiny"},
        "spec": {"samples": 100, "output": {"uri": "s3://my-bucket/data"}, "image": "r:1"},
    }


def load_example(path: Path) -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(path.read_text()))
