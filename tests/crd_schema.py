"""The CRDs' OpenAPI v3.0 schemas as JSON Schema, for jsonschema validators (api and install tests)."""

from __future__ import annotations

from typing import Any


def openapi_to_jsonschema(node: Any) -> Any:
    """A CRD's OpenAPI v3.0 schema as JSON Schema: boolean exclusive bounds become numeric."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if out.get(flag) is True:
            out[flag] = out.pop(bound)
        elif out.get(flag) is False:
            del out[flag]
    return out
