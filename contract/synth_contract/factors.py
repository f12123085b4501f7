"""Strata factors: the named variation factors of each category, and how weights re-shape them.

Every generator reads its main parameters from the sample's stratified point ``u`` in [0, 1)^8
(``synth_render.sampling``): e.g. the lighting generator picks its light kind from ``u[0]`` and its
strength from ``u[2]``. A **weighted factor** names one coordinate of that point and cuts [0, 1) into
values (``edges``); the value a sample has is the interval its coordinate falls in, so it is the
same value the generator drew. A schedule segment's ``factors`` re-weights those values: the
coordinate is warped by a monotone piecewise-linear map (``synth_render.sampling.warp``) that gives value ``v`` the share
``weight_v / sum(weights)`` of [0, 1) while keeping the draw uniform inside its interval. The
stratified sequence stays stratified under a monotone warp, so every run of consecutive ranks
(a shard) holds each value in its share up to sampling discrepancy, by construction.

**Observed factors** (``OBSERVED``: environment, occlusion) are recorded in each sample's ``strata``
from its metadata for analysis and feedback tables, but cannot be weighted: no coordinate draws them.

Shared by the contract (``spec.schedule[].factors`` is validated against ``FACTORS``), the renderer
(``synth_render.strata``, ``synth_render.sampling``) and ``synthctl feedback``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Factor:
    """One weightable factor: a coordinate of the stratified point cut into named values."""

    name: str
    coord: int
    """Index into the stratified point (``GenConfig.strata``) the generator reads this factor from."""
    values: tuple[str, ...]
    edges: tuple[float, ...] = ()
    """Interval edges in [0, 1], ``len(values) + 1`` of them; empty: equal intervals."""

    def cuts(self) -> tuple[float, ...]:
        """The interval edges (equal intervals unless ``edges`` is given)."""
        if self.edges:
            return self.edges
        n = len(self.values)
        return (*(i / n for i in range(n)), 1.0)

    def natural_shares(self) -> dict[str, float]:
        """Each value's share of samples without weights (its interval's length)."""
        e = self.cuts()
        return {v: e[i + 1] - e[i] for i, v in enumerate(self.values)}

    def value_of(self, u: float) -> str:
        """The value a coordinate ``u`` in [0, 1) falls into (as the generators' ``pick`` does)."""
        e = self.cuts()
        for i in range(len(self.values) - 1, -1, -1):
            if u >= e[i]:
                return self.values[i]
        return self.values[0]


_THIRDS_SIZE = ("small", "medium", "large")
_THIRDS_COUNT = ("few", "some", "many")
_THIRDS_LEVEL = ("low", "mid", "high")
_ONE_TO_FOUR = ("one", "two", "three", "four")  # words, not digits: YAML would read `1:` as a number
_SHAPES = ("cube", "sphere", "ico", "cylinder", "cone", "torus")
_PATTERNS = ("plain", "noise", "checker", "voronoi", "wave", "magic")

FACTORS: dict[str, tuple[Factor, ...]] = {
    "geometry": (Factor("shape", 0, _SHAPES), Factor("count", 1, _THIRDS_COUNT), Factor("size", 2, _THIRDS_SIZE),
                 Factor("elevation", 4, _THIRDS_LEVEL)),
    "materials": (Factor("pattern", 0, _PATTERNS),
                  Factor("material", 1, ("matte", "glossy", "metal", "brushed", "glass", "emissive"))),
    "lighting": (Factor("kind", 0, ("sun", "point", "area", "spot")), Factor("lights", 1, _ONE_TO_FOUR),
                 Factor("strength", 2, ("dim", "medium", "bright")),
                 Factor("temperature", 3, ("warm", "neutral", "cool")), Factor("ambient", 4, _THIRDS_LEVEL)),
    "camera": (Factor("focal", 0, ("wide", "normal", "tele")), Factor("elevation", 1, _THIRDS_LEVEL),
               Factor("depthOfField", 3, ("sharp", "shallow"), edges=(0.0, 0.6, 1.0))),
    "composition": (Factor("layout", 0, ("grid", "row", "stack", "ring", "cluster")),
                    Factor("count", 1, _THIRDS_COUNT), Factor("elevation", 4, _THIRDS_LEVEL)),
    "motion": (Factor("speed", 0, ("slow", "medium", "fast")), Factor("count", 2, _THIRDS_COUNT)),
    "environment": (Factor("setting", 0, ("forest", "rocky", "town", "park")), Factor("sun", 1, _THIRDS_LEVEL),
                    Factor("density", 2, ("sparse", "medium", "dense")), Factor("elevation", 4, _THIRDS_LEVEL)),
    "characters": (Factor("figures", 0, _ONE_TO_FOUR), Factor("stride", 2, _THIRDS_SIZE)),
    "vehicles": (Factor("kind", 0, ("car", "van", "truck")), Factor("count", 1, _ONE_TO_FOUR),
                 Factor("elevation", 3, _THIRDS_LEVEL)),
    "fluids": (Factor("kind", 0, ("glasses", "droplets", "puddles", "pour", "fill", "splash")),
               Factor("count", 3, _THIRDS_COUNT)),
    "effects": (Factor("effect", 0, ("fog", "glow", "bokeh", "blur", "smoke", "fire")),
                Factor("strength", 1, ("weak", "medium", "strong")), Factor("count", 2, _THIRDS_COUNT),
                Factor("elevation", 4, _THIRDS_LEVEL)),
}
"""Weightable factors per category (the coordinates match the generators; a test checks they do)."""

MAX_FACTORS = max(len(fs) for fs in FACTORS.values())
"""Most weightable factors of any category (bounds the CRD's map sizes, hence its CEL cost estimate)."""
MAX_VALUES = max(len(f.values) for fs in FACTORS.values() for f in fs)
"""Most values of any factor."""

OBSERVED: tuple[str, ...] = ("environment", "occlusion")
"""Factors read from a sample's metadata after rendering: recorded, never weighted."""

FACTOR_NAMES: tuple[str, ...] = tuple(sorted({f.name for fs in FACTORS.values() for f in fs} | set(OBSERVED)))
"""Every factor name of any category: the fields of the index's ``strata`` column."""

Weights = Mapping[str, Mapping[str, Mapping[str, float]]]
"""``{category: {factor: {value: weight}}}`` as in ``spec.schedule[].factors``."""


def factor(category: str, name: str) -> Factor | None:
    """The weightable factor ``name`` of ``category`` (None: no such factor)."""
    return next((f for f in FACTORS.get(category, ()) if f.name == name), None)


def weight_problems(weights: Weights, *, categories: tuple[str, ...] | None = None) -> list[str]:
    """What is wrong with a ``factors`` table: unknown category/factor/value, bad weights."""
    out = []
    for cat, table in weights.items():
        if cat not in FACTORS:
            out.append(f"factors: unknown category {cat!r} (one of {', '.join(FACTORS)})")
            continue
        if categories is not None and cat not in categories:
            out.append(f"factors.{cat}: the segment's categories do not include {cat!r}")
        for name, values in table.items():
            f = factor(cat, name)
            if f is None:
                hint = " (observed only: it cannot be weighted)" if name in OBSERVED else ""
                known = ", ".join(x.name for x in FACTORS[cat])
                out.append(f"factors.{cat}.{name}: unknown factor{hint}; {cat} has {known}")
                continue
            unknown = [v for v in values if v not in f.values]
            if unknown:
                out.append(f"factors.{cat}.{name}: unknown value(s) {', '.join(map(repr, unknown))}; "
                           f"allowed: {', '.join(f.values)}")
            bad = [v for v, w in values.items() if not (isinstance(w, int | float) and 0 <= w <= 1e9)]
            if bad:
                out.append(f"factors.{cat}.{name}: weights must be numbers in 0..1e9 ({', '.join(bad)})")
            elif not unknown and sum(resolved_shares(f, values).values()) <= 0:
                out.append(f"factors.{cat}.{name}: the weights sum to zero: at least one value needs weight > 0")
    return out


def resolved_shares(f: Factor, weights: Mapping[str, float] | None) -> dict[str, float]:
    """Each value's share of samples under ``weights`` (values left out weigh 1; None: natural shares)."""
    if weights is None:
        return f.natural_shares()
    raw = {v: float(weights.get(v, 1.0)) for v in f.values}
    total = sum(raw.values())
    return {v: (w / total if total > 0 else 0.0) for v, w in raw.items()}


def values_of(category: str, point: tuple[float, ...] | list[float]) -> dict[str, str]:
    """The weighted factors' values of a sample from its (already warped) stratified point."""
    return {f.name: f.value_of(float(point[f.coord])) for f in FACTORS.get(category, ()) if f.coord < len(point)}
