"""Low-discrepancy stratification of each category's variation parameters.

A sample's rank within its category (``planning.category_rank``) indexes a point of the
Halton sequence (radical inverses in bases 2, 3, 5, ...), rotated by a per-dataset,
per-category offset (a Cranley-Patterson rotation). Any run of consecutive ranks, wherever a
shard or a stopped run cuts it, then covers each main parameter evenly, rather than clumping
as independent draws do. O(log rank) per sample; no per-sample lists.

Factor-weighted draws (``weighted_point``): a schedule segment's ``factors`` re-weight the values
of a category's strata factors (``synth_contract.factors``) by warping the coordinates they are
read from. The warp is monotone, so consecutive ranks stay stratified: a shard holds each value in
its weighted share up to the sequence's discrepancy, and a sample's point still depends only on
(dataset seed, category, rank, the weights of its segment).
"""

from __future__ import annotations

from collections.abc import Mapping

from synth_contract.factors import FACTORS, Factor, Weights, resolved_shares

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


_MARGIN = 2e-9
"""Warped coordinates stay this far inside their value's interval (sample points are rounded to 1e-9)."""


def warp(f: Factor, u: float, weights: Mapping[str, float] | None) -> float:
    """Move ``u`` (uniform in [0, 1)) so that value ``v`` is hit with its weighted share.

    Piecewise linear and monotone: [0, 1) is cut at the cumulative shares, and the piece of value
    ``v`` is stretched onto ``v``'s interval. Without weights (or with the natural shares) it is
    the identity. Zero-weight values get no piece.
    """
    if weights is None:
        return u
    shares = resolved_shares(f, weights)
    e = f.cuts()
    acc = 0.0
    last = max(i for i, v in enumerate(f.values) if shares[v] > 0)
    for i, v in enumerate(f.values):
        p = shares[v]
        if p <= 0:
            continue
        if u < acc + p or i == last:
            t = min(max((u - acc) / p, 0.0), 1.0)
            # Kept _MARGIN inside the interval: the renderer rounds the point to 9 decimals.
            lo, hi = e[i] + _MARGIN, e[i + 1] - _MARGIN
            return min(max(e[i] + t * (e[i + 1] - e[i]), lo), hi) if hi > lo else (e[i] + e[i + 1]) / 2
        acc += p
    return u  # unreachable: the last positive value takes the rest


def weighted_point(category: str, point: tuple[float, ...], weights: Weights | None) -> tuple[float, ...]:
    """The stratified point with ``category``'s weighted factors warped (others untouched)."""
    table = (weights or {}).get(category)
    if not table:
        return point
    out = list(point)
    for f in FACTORS.get(category, ()):
        if f.name in table and f.coord < len(out):
            out[f.coord] = warp(f, out[f.coord], table[f.name])
    return tuple(out)
