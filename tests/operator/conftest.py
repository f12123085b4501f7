"""Fixtures for the operator tests: KMock in a thread and the real operator (defined in opcluster)."""

from opcluster import cluster, operator

__all__ = ["cluster", "operator"]
