"""Helpers of the views tests: what `synthctl plan --json` prints for a manifest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builders import write_manifest
from click.testing import CliRunner

from parallel_synth.commands.cli import cli


def plan_json(path: Path, spec_wire: Mapping[str, Any], *flags: str, name: str) -> dict[str, Any]:
    """`synthctl plan PATH --json FLAGS` for a manifest of ``spec_wire`` (named ``name``) written at ``path``."""
    res = CliRunner().invoke(cli, ["plan", str(write_manifest(path, spec_wire, name=name)), "--json", *flags])
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.output))
