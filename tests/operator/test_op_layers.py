"""The operator's layers: decisions are pure (no adapter, no I/O library, no clock, no environment)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DECISIONS = Path(__file__).resolve().parents[2] / "operator" / "parallel_synth" / "decisions"
FORBIDDEN = ("parallel_synth.cluster", "parallel_synth.commands", "kopf", "aiohttp", "os", "time", "synth_render")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):  # lazy imports inside functions too
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", sorted(DECISIONS.glob("*.py")), ids=lambda p: p.name)
def test_a_decision_module_imports_no_adapter_and_reads_no_clock(path: Path) -> None:
    bad = {m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"
    text = path.read_text()
    assert "datetime.now(" not in text and "time.time(" not in text, f"{path.name} reads the clock"
