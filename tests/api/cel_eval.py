"""Evaluate a CRD schema's CEL rules (x-kubernetes-validations) on an object with cel-python.

The API server evaluates each rule with ``self`` bound to the value at the schema node that
carries it; this walks the schema and the object together and does the same, so tests check the
rules' behaviour rather than their text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import celpy

_ENV = celpy.Environment()


@lru_cache(maxsize=512)
def _program(rule: str) -> Any:
    """A compiled rule (compiling dominates the cost of evaluating)."""
    return _ENV.program(_ENV.compile(rule))


def apply_defaults(schema: dict[str, Any], obj: Any) -> Any:
    """Structural defaulting as the API server does it before validation."""
    if isinstance(obj, dict):
        out = dict(obj)
        for key, sub in schema.get("properties", {}).items():
            if key not in out and "default" in sub:
                out[key] = sub["default"]
            if key in out:
                out[key] = apply_defaults(sub, out[key])
        return out
    if isinstance(obj, list) and "items" in schema:
        return [apply_defaults(schema["items"], v) for v in obj]
    return obj


def cel_violations(schema: dict[str, Any], obj: Any, path: str = "", *, old: Any = None) -> list[tuple[str, str]]:
    """(path, message) for every rule that evaluates to false on ``obj`` (after defaulting).

    Transition rules (those that use ``oldSelf``) run only when ``old`` (the stored object) is
    given, as the API server runs them only on updates; only root-level ones are evaluated.
    """
    if not path:
        obj = apply_defaults(schema, obj)
        old = apply_defaults(schema, old) if old is not None else None
    out: list[tuple[str, str]] = []
    for rule in schema.get("x-kubernetes-validations", []):
        binding = {"self": celpy.json_to_cel(obj)}
        if "oldSelf" in rule["rule"]:
            if old is None or path:
                continue
            binding["oldSelf"] = celpy.json_to_cel(old)
        result = _program(rule["rule"]).evaluate(binding)
        if isinstance(result, Exception) or not bool(result):
            out.append((path or "(root)", rule["message"]))
    if isinstance(obj, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in obj:
                out += cel_violations(sub, obj[key], f"{path}.{key}" if path else key)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in obj.items():
                out += cel_violations(extra, value, f"{path}.{key}")
    elif isinstance(obj, list) and "items" in schema:
        for i, item in enumerate(obj):
            out += cel_violations(schema["items"], item, f"{path}[{i}]")
    return out


def structural_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    """Where a schema breaks Kubernetes' structural-schema rules (untyped nodes, anyOf types...)."""
    problems = []
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path or '(root)'}: no type")
    for bad in ("$ref", "definitions", "$defs", "additionalItems", "dependencies", "patternProperties"):
        if bad in schema:
            problems.append(f"{path}: uses {bad}")
    for combinator in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(combinator, []):
            if "type" in sub:
                problems.append(f"{path}: {combinator} may not set types")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}: properties and additionalProperties together")
    for key, sub in schema.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{key}")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        problems += structural_problems(schema["items"], f"{path}[]")
    return problems


def preserve_unknown_paths(schema: dict[str, Any], path: str = "") -> list[str]:
    found = [path or "(root)"] if schema.get("x-kubernetes-preserve-unknown-fields") else []
    for key, sub in schema.get("properties", {}).items():
        found += preserve_unknown_paths(sub, f"{path}.{key}")
    if "items" in schema:
        found += preserve_unknown_paths(schema["items"], f"{path}[]")
    return found
