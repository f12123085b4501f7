"""The operator package and the renderer never import each other; synthctl reaches the renderer
only through the entry points declared in pyproject.toml, and loads a command only when it runs."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

from parallel_synth.commands.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "parallel_synth": ROOT / "operator" / "parallel_synth",
    "synth_render": ROOT / "renderer-image" / "synth_render",
    "synth_contract": ROOT / "contract" / "synth_contract",
}
FORBIDDEN = {"parallel_synth": {"synth_render"}, "synth_render": {"parallel_synth"},
             "synth_contract": {"parallel_synth", "synth_render"}}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Modules a file imports (at any depth, lazily too, through importlib too) and the
    ``package.module:attribute`` strings it could import by name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            head, colon, attr = node.value.partition(":")
            if colon and attr.isidentifier() and all(part.isidentifier() for part in head.split(".")):
                found.append((node.lineno, head))  # a "package.module:attribute" to import by name
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_across_the_boundary(package: str) -> None:
    bad = [f"{path.relative_to(ROOT)}:{line}: {name}"
           for path in sorted(PACKAGES[package].rglob("*.py"))
           for line, name in _imports(path)
           if name.split(".")[0] in FORBIDDEN[package]]
    assert not bad, "\n".join(bad)


def test_renderer_commands_and_renderer_are_entry_points() -> None:
    commands = {ep.name: ep.value for ep in entry_points(group="parallel_synth.commands")}
    assert commands == {"render-sample": "synth_render.cli:render_sample",
                        "assets": "synth_render.assets.check:assets"}
    renderers = {ep.name: ep.value for ep in entry_points(group="parallel_synth.renderers")}
    assert renderers == {"blender": "synth_render.worker:run_shard"}
    assert [ep.value for ep in entry_points(group="parallel_synth.preflight")] == [
        "synth_render.assets.check:preflight_problems"]


def test_help_lists_the_renderer_commands_without_importing_them() -> None:
    code = ("import sys; from click.testing import CliRunner; from parallel_synth.commands.cli import cli; "
            "out = CliRunner().invoke(cli, ['--help']).output; "
            "print('render-sample' in out and 'assets' in out and 'Re-render one sample' in out, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('synth_render', 'bpy', 'kopf')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert res.stdout.split(" ", 1) == ["True", "[]\n"], res.stdout + res.stderr


def test_generate_without_a_renderer_installed_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])  # an operator-only install
    res = CliRunner().invoke(cli, ["generate", str(ROOT / "examples" / "quickstart.yaml"), "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert "no renderer 'blender' installed (entry point group parallel_synth.renderers)" in res.output
    assert list(tmp_path.iterdir()) == []
