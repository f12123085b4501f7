"""Coverage and diversity: what a dataset's samples actually span, per category.

Fed one sample's metadata at a time (``Coverage.add``) while the index is written, in bounded
memory whatever the dataset's size: categorical values (strings, booleans, small integers,
classes, assets, environments) are counted up to ``MAX_VALUES`` distinct values per field (the
rest as ``other``); numbers keep exact count/min/max/mean and a deterministic reservoir of
``RESERVOIR`` values from which the histogram is drawn. ``result`` gives ``dataset.json``
``coverage``:

    {"samples": n, "diversity": 0..1,
     "categories": {category: {"samples": n, "diversity": 0..1,
                    "params": {name: {"kind": "numeric", "min", "max", "mean", "bins": [edges], "counts": [..]}
                                     | {"kind": "categorical", "counts": {value: n}}},
                    "classes": {name: n}, "assets": {id: n}, "environments": {id: n},
                    "strata": {factor: {"counts": {value: n}, "balance": 0..1}}}}}

``strata`` counts each sample's ``strata`` (synth_contract.factors; a weightable factor lists all
its values, unseen ones at 0); ``balance`` is the normalised entropy of those counts (1: even).

``diversity`` is the mean normalised entropy of the category's histograms (1: every bin or
value equally used; 0: all samples alike), a single figure to compare categories and versions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from synth_contract import factors

MAX_VALUES = 50
RESERVOIR = 4096
BINS = 10


@dataclass
class _Numeric:
    n: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    total: float = 0.0
    sample: list[float] = field(default_factory=list)

    def add(self, x: float, rng: random.Random) -> None:
        self.n += 1
        self.lo, self.hi, self.total = min(self.lo, x), max(self.hi, x), self.total + x
        if len(self.sample) < RESERVOIR:
            self.sample.append(x)
        else:
            j = rng.randrange(self.n)
            if j < RESERVOIR:
                self.sample[j] = x

    def result(self) -> dict[str, Any]:
        lo, hi = self.lo, self.hi
        width = (hi - lo) / BINS if hi > lo else 1.0
        counts = [0] * BINS
        for x in self.sample:
            counts[min(int((x - lo) / width), BINS - 1)] += 1
        scale = self.n / len(self.sample) if self.sample else 1.0
        return {"kind": "numeric", "samples": self.n, "min": lo, "max": hi, "mean": self.total / self.n,
                "bins": [lo + i * width for i in range(BINS + 1)], "counts": [round(c * scale) for c in counts]}


@dataclass
class _Counts:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, value: str, k: int = 1) -> None:
        if value not in self.counts and len(self.counts) >= MAX_VALUES:
            value = "other"
        self.counts[value] = self.counts.get(value, 0) + k


def _entropy(counts: list[int] | list[float]) -> float | None:
    """Normalised Shannon entropy of a histogram (None: fewer than two possible values)."""
    total = sum(counts)
    if total <= 0 or len(counts) < 2:
        return None
    h = -sum(c / total * math.log(c / total) for c in counts if c > 0)
    return h / math.log(len(counts))


@dataclass
class _Category:
    samples: int = 0
    numeric: dict[str, _Numeric] = field(default_factory=dict)
    categorical: dict[str, _Counts] = field(default_factory=dict)
    classes: _Counts = field(default_factory=_Counts)
    assets: _Counts = field(default_factory=_Counts)
    environments: _Counts = field(default_factory=_Counts)
    strata: dict[str, _Counts] = field(default_factory=dict)


def _flat_params(params: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(params, dict):
        for k, v in params.items():
            out += _flat_params(v, f"{prefix}{k}.")
    elif isinstance(params, list) and prefix:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in params) and len(params) <= 4:
            out += [(f"{prefix}{i}", v) for i, v in enumerate(params)]
    elif prefix:
        out.append((prefix[:-1], params))
    return out


def _environment(meta: dict[str, Any]) -> str | None:
    env = meta.get("environment")
    if not isinstance(env, dict):
        world = (meta.get("scene") or {}).get("world") if isinstance(meta.get("scene"), dict) else None
        env = world.get("environment") if isinstance(world, dict) else None
    if isinstance(env, dict):
        return str(env.get("id") or env.get("uri") or "")
    return None


def _strata_balance(category: str, strata: dict[str, _Counts]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, counts in sorted(strata.items()):
        f = factors.factor(category, name)
        full = {**({v: 0 for v in f.values} if f is not None else {}), **counts.counts}
        balance = _entropy(list(full.values()))
        out[name] = {"counts": full if f is not None else dict(sorted(full.items())),
                     "balance": round(balance, 4) if balance is not None else None}
    return out


class Coverage:
    """Accumulates coverage over samples' metadata (bounded memory, deterministic)."""

    def __init__(self, *, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._cats: dict[str, _Category] = {}

    def add(self, meta: dict[str, Any]) -> None:
        cat = self._cats.setdefault(str(meta.get("category", "")), _Category())
        cat.samples += 1
        for name, value in _flat_params(meta.get("params") or {}):
            if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)
                                            and name in cat.numeric):
                cat.numeric.setdefault(name, _Numeric()).add(float(value), self._rng)
            elif isinstance(value, str | bool | int):
                cat.categorical.setdefault(name, _Counts()).add(str(value))
        for obj in meta.get("objects") or []:
            if not isinstance(obj, dict):
                continue
            cat.classes.add(str(obj.get("class", "")))
            asset = obj.get("asset")
            if isinstance(asset, dict):
                cat.assets.add(f"{asset.get('library', '')}/{asset.get('id', '')}")
        env = _environment(meta)
        if env:
            cat.environments.add(env)
        strata = meta.get("strata")
        for name, value in (strata.items() if isinstance(strata, dict) else ()):
            cat.strata.setdefault(str(name), _Counts()).add(str(value))

    def result(self) -> dict[str, Any]:
        cats: dict[str, Any] = {}
        all_div: list[float] = []
        for name in sorted(self._cats):
            c = self._cats[name]
            params: dict[str, Any] = {k: v.result() for k, v in sorted(c.numeric.items())}
            params.update({k: {"kind": "categorical", "counts": dict(sorted(v.counts.items()))}
                           for k, v in sorted(c.categorical.items())})
            ents = [_entropy(p["counts"]) if p["kind"] == "numeric" else _entropy(list(p["counts"].values()))
                    for p in params.values()]
            ents += [_entropy(list(b.counts.values())) for b in (c.classes, c.assets, c.environments)]
            vals = [e for e in ents if e is not None]
            div = sum(vals) / len(vals) if vals else 0.0
            all_div.append(div)
            cats[name] = {"samples": c.samples, "diversity": round(div, 4), "params": params,
                         "classes": dict(sorted(c.classes.counts.items())),
                         "assets": dict(sorted(c.assets.counts.items())),
                         "environments": dict(sorted(c.environments.counts.items())),
                         "strata": _strata_balance(name, c.strata)}
        return {"samples": sum(c.samples for c in self._cats.values()),
                "diversity": round(sum(all_div) / len(all_div), 4) if all_div else 0.0, "categories": cats}
