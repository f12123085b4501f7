"""Low-discrepancy stratification of each category's variation parameters.

A sample's rank within its category (``planning.category_rank``) indexes a point of the
R_d sequence (Roberts' generalisation of the golden ratio), shifted by a per-dataset,
per-category offset (a Cranley-Patterson rotation). Any prefix of a category, wherever it
was cut, then covers the unit cube of its main parameters evenly, rather than clumping as
independent draws do. O(1) per sample; no per-sample lists.
"""

from __future__ import annotations

from functools import lru_cache

DIMS = 8
"""Coordinates per point: generators use the first few for the parameters that matter most."""


@lru_cache(maxsize=16)
def _alphas(dims: int) -> tuple[float, ...]:
    # phi_d is the unique positive root of x**(d+1) = x + 1 (Newton iteration).
    x = 2.0
    for _ in range(64):
        x -= (x ** (dims + 1) - x - 1) / ((dims + 1) * x**dims - 1)
    return tuple((1 / x) ** (k + 1) % 1.0 for k in range(dims))


def r_sequence(rank: int, *, dims: int = DIMS, shift: tuple[float, ...] | None = None) -> tuple[float, ...]:
    """The ``rank``-th point of the R_d sequence in [0, 1)^dims, optionally rotated by ``shift``."""
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    offs = shift or (0.5,) * dims
    # Exact rational-ish arithmetic would be nicer; float error stays < 1e-6 up to rank 1e9.
    return tuple((offs[k] + a * rank) % 1.0 for k, a in enumerate(_alphas(dims)))


def rotate(point: tuple[float, ...], by: float) -> tuple[float, ...]:
    """Rotate every coordinate by ``by`` (mod 1): re-renders move to another stratum."""
    return tuple((u + by * (k + 1) * 0.618033988749895) % 1.0 for k, u in enumerate(point))
