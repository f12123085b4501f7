"""Strict scalar fields for the spec models: what the CRD refuses, pydantic refuses too.

Pydantic's lax mode coerces ``true`` to ``1``, ``"5"`` to ``5`` and ``1`` to ``True``; the API
server refuses all three (``type: integer`` / ``boolean`` / ``number``). Setting pydantic's
``strict`` model-wide is not an option either: in Python mode it refuses strings for enums and
datetimes, which the operator receives as JSON strings from the API. So only the plain scalar
fields (``int``, ``float``, ``bool``, optionally ``| None``) are made strict, each on its own;
strict floats still accept integers (JSON ``1`` for a ``number``), and floats refuse
``inf``/``nan`` (JSON cannot carry them, and ``dataset.json`` must stay JSON).

Also here: the Kubernetes quantity syntax (``cpu: 500m``, ``memory: 16Gi``), used by the
models and, as a ``pattern``, by the CRD.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import AllowInfNan, BaseModel, Strict

QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
"""A non-negative Kubernetes resource quantity (apimachinery's syntax, without a sign)."""

_QUANTITY = re.compile(QUANTITY_PATTERN)
_SCALARS: tuple[type, ...] = (int, float, bool)


def _scalar(annotation: Any) -> type | None:
    """``int``/``float``/``bool`` for ``X`` or ``X | None``; ``None`` for anything else."""
    if annotation in _SCALARS:
        return typing.cast(type, annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and args[0] in _SCALARS:
            return typing.cast(type, args[0])
    return None


def make_scalars_strict(cls: type[BaseModel]) -> None:
    """Make ``cls``'s scalar fields strict (and its floats finite); rebuild its validator."""
    changed = False
    for field in cls.model_fields.values():
        kind = _scalar(field.annotation)
        if kind is None:
            continue
        if not any(isinstance(m, Strict) for m in field.metadata):
            field.metadata.append(Strict())
            changed = True
        if kind is float and not any(isinstance(m, AllowInfNan) for m in field.metadata):
            field.metadata.append(AllowInfNan(False))
            changed = True
    if changed:
        cls.model_rebuild(force=True, raise_errors=False)


def check_quantity(value: str, *, what: str) -> str:
    """``value`` if it is a non-negative Kubernetes quantity, else a ``ValueError`` saying what is allowed."""
    if not _QUANTITY.match(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes {what} quantity: a non-negative number with an optional suffix, "
            "such as \"4\", \"500m\", \"16Gi\" or \"512Mi\""
        )
    return value
