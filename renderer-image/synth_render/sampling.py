"""Low-discrepancy stratification of each category's variation parameters.

A sample's rank within its category (``planning.category_rank``) indexes a point of the
Halton sequence (radical inverses in bases 2, 3, 5, ...), rotated by a per-dataset,
per-category offset (a Cranley-Patterson rotation). Any run of consecutive ranks, wherever a
shard or a stopped run cuts it, then covers each main parameter evenly, rather than clumping
as independent draws do. O(log rank) per sample; no per-sample lists.
"""

from __future__ import annotations

DIMS = 8
"""Coordinates per point: generators use the first few for the parameters that matter most."""

BASES = (2, 3, 5, 7, 11, 13, 17, 19)


def radical_inverse(n: int, base: int) -> float:
    """The van der Corput radical inverse of ``n`` in ``base`` (digits mirrored after the point)."""
    x, f = 0.0, 1.0 / base
    while n:
        n, d = divmod(n, base)
        x += d * f
        f /= base
    return x


def r_sequence(rank: int, *, dims: int = DIMS, shift: tuple[float, ...] | None = None) -> tuple[float, ...]:
    """The ``rank``-th stratified point in [0, 1)^dims, optionally rotated by ``shift``."""
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    if not 1 <= dims <= len(BASES):
        raise ValueError(f"dims must be 1..{len(BASES)}")
    offs = shift or (0.0,) * dims
    return tuple((radical_inverse(rank, BASES[k]) + offs[k]) % 1.0 for k in range(dims))


def rotate(point: tuple[float, ...], by: float) -> tuple[float, ...]:
    """Rotate every coordinate by ``by`` (mod 1): re-renders move to another stratum."""
    return tuple((u + by * (k + 1) * 0.618033988749895) % 1.0 for k, u in enumerate(point))
