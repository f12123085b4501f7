"""A sample's strata: the named factor values it was drawn in, recorded as ``strata`` in its JSON.

``strata_of(meta)`` reads a rendered sample's metadata (its category and ``strataPoint``, the
stratified point the generator drew its main parameters from) and names the value of each of the
category's weightable factors (``synth_contract.factors.FACTORS``), plus the observed factors
``environment`` (the HDRI that lit the scene, ``none`` for a flat sky) and ``occlusion`` (from the
objects' ``visibleFraction``: ``none`` / ``partial`` / ``heavy``). The index copies these into its
``strata`` column and dataset.json counts them per category; ``synthctl feedback`` re-weights the
weightable ones. Pure: no Blender, no I/O.
"""

from __future__ import annotations

from typing import Any

from synth_contract import factors

OCCLUSION_LEVELS = (("none", 0.1), ("partial", 0.4), ("heavy", 1.01))
"""(level, upper bound of the mean hidden fraction of the sample's subject objects)."""


def occlusion_level(objects: list[Any]) -> str | None:
    """How hidden the subject objects are on average (None: no object carries ``visibleFraction``)."""
    hidden = [1.0 - float(o["visibleFraction"]) for o in objects
              if isinstance(o, dict) and not o.get("distractor") and isinstance(o.get("visibleFraction"), int | float)]
    if not hidden:
        return None
    mean = sum(hidden) / len(hidden)
    return next(level for level, upper in OCCLUSION_LEVELS if mean < upper)


def environment_of(meta: dict[str, Any]) -> str:
    """The id of the HDRI that lit the sample, ``none`` without one."""
    env = meta.get("environment")
    return str(env.get("id") or "none") if isinstance(env, dict) else "none"


def strata_of(meta: dict[str, Any]) -> dict[str, str]:
    """``{factor: value}`` of one sample (weightable factors from ``strataPoint``, observed ones from the rest)."""
    point = meta.get("strataPoint")
    out = factors.values_of(str(meta.get("category", "")), point) if isinstance(point, list | tuple) else {}
    out["environment"] = environment_of(meta)
    level = occlusion_level(meta.get("objects") or [])
    if level is not None:
        out["occlusion"] = level
    return out
