"""Bake time of simulated samples (liquid, smoke, fire) in the capacity plan, without the renderer.

The renderer's ``fluids`` category simulates a liquid (``synth_render.simulation``) in its pour,
fill and splash scenes, three of its six kinds (``generators/fluids.py``: ``_KINDS``,
``_SIMULATED``), and ``effects`` simulates a smoke or a fire plume in two of its six effects
(``generators/effects.py``: ``_EFFECTS``); the kind is picked from a stratified coordinate, so these
are the shares of the category's samples. The bake runs on the pod's CPU while the pod holds its
GPU, so it is billed GPU time. The operator does not import ``synth_render``: keep these tables in
step with the generators.
"""

from __future__ import annotations

from typing import Any

BAKE_SECONDS: dict[str, float] = {"liquid": 0.31, "smoke": 0.07, "fire": 0.07}
"""Median bake seconds of one simulation at tier 1 (the lowest), by kind. Measured on the CPU (2 cores)
with ``python benchmarks/bench_simulation.py --samples 12`` (tiers 1/2/3: liquid 0.31/0.49/0.81 s,
smoke 0.07/0.11/0.18 s, fire 0.07/0.12/0.17 s). Tier 1 is what the built-in scenes mostly get."""

SIMULATED_SHARE: dict[str, dict[str, float]] = {
    "fluids": {"liquid": 3 / 6},  # pour, fill, splash of glasses/droplets/puddles/pour/fill/splash
    "effects": {"smoke": 1 / 6, "fire": 1 / 6},  # of fog/glow/bokeh/blur/smoke/fire
}
"""Per category: the share of its samples that bake each kind of simulation."""


def category_bake_seconds(category: str) -> float:
    """Expected bake seconds of a sample of ``category`` (0 for categories that simulate nothing)."""
    return sum(share * BAKE_SECONDS[kind] for kind, share in SIMULATED_SHARE.get(str(category), {}).items())


def bake_seconds_per_sample(spec: Any) -> float:
    """Expected bake seconds of an average sample of ``spec``: over the categories, their share of the
    dataset's samples x the share of their samples that simulate x the bake seconds of that simulation."""
    from synth_contract.planning import category_targets

    targets = category_targets(spec)
    total = sum(targets.values())
    if total <= 0:
        return 0.0
    return sum(n / total * category_bake_seconds(name) for name, n in targets.items())
