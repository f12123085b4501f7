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


CLUSTER = DECISIONS.parent / "cluster"
EXIT_CODE_LITERALS = {2, 3, 143}


def _exit_code_literals(path: Path) -> list[int]:
    """Integer literals compared with, or listed as, an exit code (``exitCode``/``values`` keys)."""
    found: list[int] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            found += [c.value for c in (node.left, *node.comparators)
                      if isinstance(c, ast.Constant) and c.value in EXIT_CODE_LITERALS and not isinstance(c.value, bool)]
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "values" and isinstance(v, ast.List):
                    found += [e.value for e in v.elts if isinstance(e, ast.Constant) and isinstance(e.value, int)]
    return found


@pytest.mark.parametrize("path", sorted([*DECISIONS.glob("*.py"), *CLUSTER.glob("*.py")]), ids=lambda p: p.name)
def test_exit_codes_come_from_the_contract(path: Path) -> None:
    """Issue #22 item 13 / #24: observe compared with a literal 143, the index Job listed exit 2."""
    assert _exit_code_literals(path) == [], f"{path.name}: use synth_contract.exitcodes"
