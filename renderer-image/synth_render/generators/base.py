"""What every generator receives, and the signature they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synth_render.scene import Scene


@dataclass(frozen=True)
class GenConfig:
    """The per-sample inputs of a generator (besides its random generator)."""

    category: str
    seed: int
    """The seed the sample is rendered with (a derived seed on a re-render)."""
    rank: int
    """The sample's rank within its category (``planning.category_rank``)."""
    strata: tuple[float, ...]
    """Low-discrepancy point in [0,1)^8 for the category's main parameters (from ``rank``)."""
    aspect: float = 1.0
    """Image width / height, so that generators can frame their objects."""
    environments: tuple[tuple[str, str], ...] = ()
    """(source URI, image id) of every HDRI the spec offers, in a fixed order; empty: flat-colour skies."""
    textures: tuple[tuple[str, str], ...] = ()
    """(source URI, set id) of every PBR texture set the spec offers; empty: procedural materials only."""


Generator = Callable[[GenConfig, np.random.Generator], Scene]
