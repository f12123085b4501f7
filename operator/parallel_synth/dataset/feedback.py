"""Feedback: per-sample training losses in, the next schedule segment out (pure arithmetic, no I/O).

``synthctl feedback`` joins a user's losses with the index (each sample's category and strata),
then for every category and every weightable factor value (``synth_contract.factors``):

1. **Estimate** the mean loss with shrinkage: a value seen ``n`` times gets
   ``(n * mean + prior * parent) / (n + prior)``, the parent being the category's estimate (and a
   category's parent the overall mean), so a value with few samples stays near its parent rather
   than swinging on noise. A 95% interval (normal approximation) is reported with it.
2. **Target** shares: the current share times the value's estimated loss over the mean of its
   siblings' (a multiplicative-weights step: more samples where the model does worse, no move when
   every value does as well; a value's natural share, e.g. 60/40, is kept when losses are equal).
3. **Bound** the move: no value under ``floor / n_values`` (exploration: nothing drops to zero), no
   share multiplied or divided by more than ``max_step`` in one round; the shares that satisfy the
   bounds and stay proportional to the target elsewhere are found by bisection (``bounded_shares``).

``next_segment`` turns the result into a ``spec.schedule`` entry; ``appended`` adds it to a manifest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synth_contract import factors, planning
from synth_contract.api import SynthDatasetSpec


@dataclass(frozen=True)
class Settings:
    """How feedback weighs evidence and how far it may move the weights in one round."""

    prior: float = 20.0
    """Shrinkage strength: pseudo-samples at the parent's estimate added to every mean."""
    floor: float = 0.25
    """Exploration floor: no value's share under ``floor`` times its uniform share (1 / values)."""
    max_step: float = 2.0
    """A share is at most multiplied or divided by this per round."""
    min_rows: int = 20
    """Fewer joined losses than this: too little evidence to write a segment."""


@dataclass(frozen=True)
class Sample:
    """One joined row: a sample's category, strata and loss."""

    key: str
    category: str
    strata: Mapping[str, str | None]
    loss: float


@dataclass(frozen=True)
class Estimate:
    """The loss of one category (``factor`` None) or one factor value, with its confidence."""

    category: str
    factor: str | None
    value: str | None
    n: int
    mean: float
    """Raw mean loss of its samples (NaN without samples)."""
    estimate: float
    """Shrunk toward the parent's estimate."""
    half_width: float
    """Half the 95% interval of ``estimate`` (inf with fewer than two samples)."""


@dataclass(frozen=True)
class Change:
    """A share before and after, and why it moved."""

    estimate: Estimate
    old: float
    new: float
    why: str


@dataclass
class Plan:
    """The next segment's shares and the table that explains them."""

    categories: dict[str, float]
    factors: dict[str, dict[str, dict[str, float]]]
    changes: list[Change] = field(default_factory=list)


# --------------------------------------------------------------------------- checks


def loss_problems(keys: Sequence[str | None], losses: Sequence[float | None], *, known: set[str],
                  dataset: str, datasets: Sequence[str | None] = (), settings: Settings = Settings()) -> list[str]:
    """What makes a losses table unusable (empty: fine); each problem is one line naming rows/keys."""
    problems = []
    foreign = sorted({d for d in datasets if d is not None and d != dataset})
    if foreign:
        problems.append(f"rows of dataset {', '.join(map(repr, foreign[:3]))}, not {dataset!r} (column dataset)")
    missing = [i for i, k in enumerate(keys) if k is None]
    if missing:
        problems.append(f"{len(missing)} row(s) without a key or index (first: row {missing[0] + 1})")
    bad = [(i, v) for i, v in enumerate(losses) if v is None or not math.isfinite(v) or v < 0]
    if bad:
        i, v = bad[0]
        problems.append(f"{len(bad)} loss(es) missing, NaN, infinite or negative (first: row {i + 1}, loss {v!r}); "
                        "losses must be finite numbers >= 0")
    seen: dict[str, int] = {}
    for k in keys:
        if k is not None:
            seen[k] = seen.get(k, 0) + 1
    dupes = sorted(k for k, n in seen.items() if n > 1)
    if dupes:
        problems.append(f"{len(dupes)} key(s) appear more than once (first: {dupes[0]}); one loss per sample")
    unknown = sorted(k for k in seen if k not in known)
    if unknown and len(unknown) == len(seen):
        problems.append(f"none of the {len(seen)} keys is a sample of {dataset!r} (first: {unknown[0]}): "
                        "are these another dataset's losses?")
    elif unknown:
        problems.append(f"{len(unknown)} key(s) are not samples of {dataset!r} (first: {unknown[0]})")
    usable = len(seen) - len(unknown)
    if not problems and usable < settings.min_rows:
        problems.append(f"only {usable} loss row(s): feedback needs at least {settings.min_rows} "
                        "(--min-rows) to say anything")
    return problems


# --------------------------------------------------------------------------- estimates


def _stats(values: Sequence[float]) -> tuple[int, float, float]:
    """(n, mean, standard deviation) with n - 1 in the variance (sd NaN for n < 2)."""
    n = len(values)
    if n == 0:
        return 0, math.nan, math.nan
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return n, mean, sd


def shrunk(values: Sequence[float], parent: float, prior: float, *, category: str, factor: str | None = None,
           value: str | None = None, spread: float = math.nan) -> Estimate:
    """The shrinkage estimate of ``values`` toward ``parent`` (``spread``: the sd to use when n < 2)."""
    n, mean, sd = _stats(values)
    est = (n * mean + prior * parent) / (n + prior) if n else parent
    sd = sd if n > 1 else spread
    half = 1.96 * sd * math.sqrt(n) / (n + prior) if n > 0 and math.isfinite(sd) else math.inf
    return Estimate(category=category, factor=factor, value=value, n=n, mean=mean, estimate=est, half_width=half)


def estimates(samples: Sequence[Sample], settings: Settings = Settings(),
              categories: Sequence[str] = ()) -> tuple[dict[str, Estimate], dict[tuple[str, str, str], Estimate]]:
    """Per category, and per (category, factor, value) of the weightable factors, the shrunk mean loss."""
    overall = _stats([s.loss for s in samples])
    by_cat: dict[str, list[Sample]] = {}
    for s in samples:
        by_cat.setdefault(s.category, []).append(s)
    cats = {c: shrunk([s.loss for s in by_cat.get(c, [])], overall[1], settings.prior, category=c, spread=overall[2])
            for c in sorted({*by_cat, *categories})}
    values: dict[tuple[str, str, str], Estimate] = {}
    for c, rows in by_cat.items():
        parent = cats[c]
        spread = _stats([s.loss for s in rows])[2]
        for f in factors.FACTORS.get(c, ()):
            for v in f.values:
                losses = [s.loss for s in rows if s.strata.get(f.name) == v]
                values[(c, f.name, v)] = shrunk(losses, parent.estimate, settings.prior, category=c, factor=f.name,
                                                value=v, spread=spread)
    return cats, values


# --------------------------------------------------------------------------- shares


_TRACE = 1e-6


def bounded_shares(target: Mapping[str, float], current: Mapping[str, float], settings: Settings = Settings()
                   ) -> dict[str, float]:
    """Shares proportional to ``target`` where the bounds allow, summing to 1.

    Bounds per value: at least ``floor / n`` and ``current / max_step``, at most ``current * max_step``
    (raised to the lower bound if that is higher). ``clip(lam * target, lo, hi)`` grows with ``lam``, so
    bisection finds the ``lam`` whose shares sum to 1.
    """
    names = list(current)
    n = len(names)
    if n == 0:
        return {}
    total = sum(max(target.get(k, 0.0), 0.0) for k in names)
    if total <= 0:
        return {k: float(current[k]) for k in names}
    cur_total = sum(current.values()) or 1.0
    # A trace of the current shares in the target: where every value that wants more is capped, the
    # others share the rest in their current proportions instead of the cap being broken.
    q = {k: (1 - _TRACE) * max(target.get(k, 0.0), 0.0) / total + _TRACE * current[k] / cur_total for k in names}
    lo = {k: max(settings.floor / n, current[k] / settings.max_step) for k in names}
    hi = {k: max(current[k] * settings.max_step, lo[k]) for k in names}
    if sum(lo.values()) >= 1:  # the bounds alone fill the unit: keep their proportions
        s = sum(lo.values())
        return {k: lo[k] / s for k in names}

    def total_at(lam: float) -> float:
        return sum(min(max(lam * q[k], lo[k]), hi[k]) for k in names)

    a, b = 0.0, 1.0
    while total_at(b) < 1 and b < 1e15:
        b *= 2
    for _ in range(200):
        m = (a + b) / 2
        a, b = (m, b) if total_at(m) < 1 else (a, m)
    out = {k: min(max(b * q[k], lo[k]), hi[k]) for k in names}
    s = sum(out.values())
    return {k: v / s for k, v in out.items()}


def _why(est: Estimate, parent: float, old: float, new: float, *, target: float, settings: Settings, n_values: int
         ) -> str:
    ratio = est.estimate / parent if parent > 0 else 1.0
    if abs(new - old) < 0.005:
        return f"loss {ratio:.2f}x: unchanged"
    if est.n == 0:
        head = "no samples: left at its parent's loss"
    else:
        head = f"loss {ratio:.2f}x{' (few samples: shrunk)' if est.n < settings.prior else ''}"
    if new > old and new >= old * settings.max_step * 0.999 and target > new:
        return f"{head}: more, capped at {settings.max_step:g}x per round"
    if new < old and new <= max(old / settings.max_step, settings.floor / n_values) * 1.001 and target < new:
        floor = settings.floor / n_values
        return f"{head}: fewer, {'held at the exploration floor' if new <= floor * 1.001 else f'capped at 1/{settings.max_step:g} per round'}"
    return f"{head}: {'more' if new > old else 'fewer'}"


def _current_segment(spec: SynthDatasetSpec) -> planning.Segment:
    return planning.segments(spec)[-1]


def current_shares(spec: SynthDatasetSpec) -> tuple[dict[str, float], dict[str, dict[str, dict[str, float]]]]:
    """The last segment's category shares and, per category, every weightable factor's value shares."""
    seg = _current_segment(spec)
    counts = dict(zip(seg.layout.names, seg.layout.per_block, strict=True))
    total = sum(counts.values()) or 1
    cats = {c: n / total for c, n in counts.items()}
    weights = seg.factors or {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for c in cats:
        table = weights.get(c) or {}
        out[c] = {f.name: factors.resolved_shares(f, table.get(f.name)) for f in factors.FACTORS.get(c, ())}
    return cats, out


def _target(shares: Mapping[str, float], loss: Mapping[str, float]) -> dict[str, float]:
    """Current share times relative loss (the loss over the share-weighted mean loss), normalised."""
    mean = sum(shares[k] * loss[k] for k in shares)
    if mean <= 0:
        return dict(shares)
    raw = {k: shares[k] * loss[k] / mean for k in shares}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


def plan_next(spec: SynthDatasetSpec, samples: Sequence[Sample], settings: Settings = Settings()) -> Plan:
    """The next segment's category and factor shares from the losses, with a row per share that moved or not."""
    cats_now, factors_now = current_shares(spec)
    cat_est, val_est = estimates(samples, settings, categories=list(cats_now))
    overall = _stats([s.loss for s in samples])[1]
    cat_target = _target(cats_now, {c: cat_est[c].estimate for c in cats_now})
    cats_next = bounded_shares(cat_target, cats_now, settings)
    total_target = sum(cat_target.values()) or 1.0
    changes = [Change(cat_est[c], cats_now[c], cats_next[c],
                      _why(cat_est[c], overall, cats_now[c], cats_next[c], target=cat_target[c] / total_target,
                           settings=settings, n_values=len(cats_now)))
               for c in cats_now]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for c, table in factors_now.items():
        if not cat_est[c].n:
            continue  # no losses for the category: leave its factors as they are
        for name, shares in table.items():
            target = _target(shares, {v: val_est[(c, name, v)].estimate for v in shares})
            new = bounded_shares(target, shares, settings)
            out.setdefault(c, {})[name] = {v: round(new[v], 4) for v in shares}
            t_total = sum(target.values()) or 1.0
            changes += [Change(val_est[(c, name, v)], shares[v], new[v],
                               _why(val_est[(c, name, v)], cat_est[c].estimate, shares[v], new[v],
                                    target=target[v] / t_total, settings=settings, n_values=len(shares)))
                        for v in shares]
    return Plan(categories={c: round(v, 4) for c, v in cats_next.items()}, factors=out, changes=changes)


# --------------------------------------------------------------------------- the segment and the manifest


def next_from_shard(spec: SynthDatasetSpec) -> int:
    """Where the new segment starts: the first shard after the current plan (and after the last segment)."""
    last = max((s.from_shard for s in spec.schedule), default=0)
    return max(planning.shard_count(spec), last + 1, 1)


def next_segment(plan: Plan, *, from_shard: int) -> dict[str, Any]:
    """The ``spec.schedule`` entry (wire form) of a plan."""
    seg: dict[str, Any] = {"fromShard": from_shard,
                           "categories": [{"name": c, "weight": w} for c, w in plan.categories.items()]}
    if plan.factors:
        seg["factors"] = plan.factors
    return seg


def appended(doc: dict[str, Any], segment: dict[str, Any], *, samples: int) -> dict[str, Any]:
    """A copy of a SynthDataset manifest with ``segment`` appended and ``spec.samples`` set (nothing else changes)."""
    spec = dict(doc.get("spec") or {})
    spec["schedule"] = [*list(spec.get("schedule") or []), segment]
    spec["samples"] = samples
    return {**doc, "spec": spec}


def format_table(plan: Plan, *, limit: int = 60) -> list[str]:
    """A short human-readable table: where, samples, mean and estimated loss, share now -> next, why."""
    rows = [("where", "n", "mean", "estimate", "share", "why")]
    moved = sorted(plan.changes, key=lambda ch: (ch.estimate.factor is not None, -abs(ch.new - ch.old)))
    for ch in moved[:limit]:
        e = ch.estimate
        where = e.category if e.factor is None else f"{e.category}.{e.factor}={e.value}"
        mean = "-" if math.isnan(e.mean) else f"{e.mean:.4g}"
        half = "" if not math.isfinite(e.half_width) else f" ±{e.half_width:.2g}"
        rows.append((where, str(e.n), mean, f"{e.estimate:.4g}{half}", f"{ch.old:.3f} -> {ch.new:.3f}", ch.why))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(c.ljust(widths[i]) if i < 5 else c for i, c in enumerate(r)) for r in rows]
