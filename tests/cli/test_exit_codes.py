"""DESIGN's exit codes in every command: 0 ok, 1 the thing checked has problems, 2 wrong usage or unreadable.

Run in-process with click's runner (the same code a subprocess runs, minus interpreter start-up).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from builders import SMALL, manifest, wire
from click.testing import CliRunner

from parallel_synth.commands.cli import cli

GOOD = manifest(wire(SMALL, samples=20, shardSize=10), name="good")


def _bad(name: str = "bad") -> dict[str, object]:
    return manifest(wire(GOOD["spec"], samples=True), name=name)


def _write(tmp_path: Path, *docs: object, name: str = "m.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_validate_manifest_checks_every_document(tmp_path: Path) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "synth"}}
    path = _write(tmp_path, ns, GOOD, _bad("second"))
    res = CliRunner().invoke(cli, ["validate-manifest", path])
    assert res.exit_code == 1, res.output
    assert "(document 2): valid SynthDataset 'good'" in res.output
    assert "(document 3): 1 problem(s)" in res.output
    assert "spec.samples: true is not allowed: must be an integer" in res.output
    ok = CliRunner().invoke(cli, ["validate-manifest", _write(tmp_path, ns, GOOD, {**GOOD, "metadata": {"name": "b"}})])
    assert ok.exit_code == 0 and ok.output.count("valid SynthDataset") == 2


def test_a_command_that_renders_one_dataset_refuses_a_file_with_two(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD, {**GOOD, "metadata": {"name": "other"}})
    res = CliRunner().invoke(cli, ["plan", path])
    assert res.exit_code == 2
    assert "holds 2 SynthDataset documents" in res.output


COMMANDS = [
    ["validate-manifest"],
    ["plan"],
    ["generate", "--out", "{tmp}/out"],
    ["simulate", "--days", "1"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_manifest_problems_exit_1_unreadable_exit_2(tmp_path: Path, cmd: list[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in cmd]
    bad = CliRunner().invoke(cli, [args[0], _write(tmp_path, _bad()), *args[1:]])
    assert bad.exit_code == 1, bad.output
    assert "spec.samples: true is not allowed" in bad.output
    (tmp_path / "broken.yaml").write_text("a: [unclosed\n")
    unreadable = CliRunner().invoke(cli, [args[0], str(tmp_path / "broken.yaml"), *args[1:]])
    assert unreadable.exit_code == 2, unreadable.output
    assert "cannot read manifest" in unreadable.output
    missing = CliRunner().invoke(cli, [args[0], str(tmp_path / "nope.yaml"), *args[1:]])
    assert missing.exit_code == 2
    nested = tmp_path / "nested.yaml"
    nested.write_text("[" * 50_000 + "]" * 50_000)
    deep = CliRunner().invoke(cli, [args[0], str(nested), *args[1:]])
    assert deep.exit_code == 2 and "Traceback" not in deep.output, deep.output


@pytest.mark.parametrize("cmd", ["validate-manifest", "plan", "generate", "validate", "preview", "simulate",
                                 "render-sample"])
def test_help_states_the_exit_codes(cmd: str) -> None:
    res = CliRunner().invoke(cli, [cmd, "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "Exit codes:" in text and "0 " in text and "1 " in text and "2 " in text


def test_group_help_states_the_exit_codes() -> None:
    text = CliRunner().invoke(cli, ["--help"]).output
    assert "Exit codes (every command)" in text
