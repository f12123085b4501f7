"""The dataset-wide class vocabulary: which object classes a dataset can contain, and their ids.

Pure and deterministic from the spec: the sorted class names that the built-in generators of
the spec's categories can emit, plus the classes of the asset libraries (when a dataset uses
libraries, their classes are passed in as ``extra``). Ids start at 1 so that 0 stays the
background in semantic masks (``{key}.sem.png``); ``dataset.json`` lists them as
``classes: [{id, name}]`` and every object in a sample's JSON carries its ``classId``.

A generator that starts emitting a new class must add it here: a test renders scene
descriptions of every category and fails on a class missing from this table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_SHAPES = ("capsule", "cone", "cube", "cylinder", "ico", "sphere", "torus")
_CLUTTER = ("ball", "book", "bottle", "box", "can", "mug")
"""Distractor props that scene building may add to any category."""

CATEGORY_CLASSES: dict[str, tuple[str, ...]] = {
    "geometry": (*_SHAPES, *_CLUTTER),
    "materials": (*_SHAPES, "rock", *_CLUTTER),
    "lighting": (*_SHAPES, *_CLUTTER),
    "camera": (*_SHAPES, *_CLUTTER),
    "composition": (*_SHAPES, *_CLUTTER),
    "motion": (*_SHAPES, *_CLUTTER),
    "environment": ("building", "rock", "tree", *_CLUTTER),
    "characters": ("person", *_CLUTTER),
    "vehicles": ("car", "truck", "van", *_CLUTTER),
    "fluids": ("droplet", "glass", "liquid", "puddle", *_CLUTTER),
    "effects": (*_SHAPES, "fire", "smoke", *_CLUTTER),
}
"""Classes each built-in category generator may emit."""


def vocabulary(categories: Iterable[str], extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``[{id, name}]`` for the given category names plus extra (library) classes, ids from 1."""
    names: set[str] = set()
    for cat in categories:
        names.update(CATEGORY_CLASSES.get(str(cat), ()))
    names.update(str(e) for e in extra if str(e))
    return [{"id": i + 1, "name": n} for i, n in enumerate(sorted(names))]


def spec_vocabulary(spec: Any, extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The vocabulary of a ``SynthDatasetSpec`` (its categories, plus library classes)."""
    return vocabulary((str(c.name) for c in spec.categories), extra)


def class_ids(vocab: list[dict[str, Any]]) -> dict[str, int]:
    """name -> id of a vocabulary."""
    return {str(c["name"]): int(c["id"]) for c in vocab}
