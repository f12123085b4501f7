"""Fixtures of the scaling tests: KMock and the real operator, from tests/operator/opcluster.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))  # opcluster and kmockx

from opcluster import cluster, operator

__all__ = ["cluster", "operator"]
