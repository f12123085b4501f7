"""Procedural scene generators, one module per category of the taxonomy.

``GENERATORS`` maps a category name to a pure function ``(GenConfig, rng) -> Scene``. None of
these modules imports Blender.
"""

from __future__ import annotations

from synth_render.generators import (
    camera,
    characters,
    composition,
    effects,
    environment,
    fluids,
    geometry,
    lighting,
    materials,
    motion,
    vehicles,
)
from synth_render.generators.base import GenConfig, Generator

GENERATORS: dict[str, Generator] = {
    "geometry": geometry.generate,
    "materials": materials.generate,
    "lighting": lighting.generate,
    "camera": camera.generate,
    "composition": composition.generate,
    "motion": motion.generate,
    "environment": environment.generate,
    "characters": characters.generate,
    "vehicles": vehicles.generate,
    "fluids": fluids.generate,
    "effects": effects.generate,
}

__all__ = ["GENERATORS", "GenConfig", "Generator"]
