"""Helpers shared by the install tests (paths, subprocess, YAML, OpenAPI schemas)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "parallel-synth"
MANIFESTS = ROOT / "manifests"


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its text output; raise with its stderr when it fails."""
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}{out.stdout}")
    return out


def load_all(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


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
