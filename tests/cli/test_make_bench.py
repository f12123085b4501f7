"""`make bench` runs: every benchmark script accepts the arguments the Makefile passes it."""

from __future__ import annotations

import argparse
import re
import runpy
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench_commands() -> list[list[str]]:
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^bench:.*\n((?:\t.*\n?)+)", text, re.M)
    assert recipe, "no bench target in the Makefile"
    return [shlex.split(line.strip())[1:] for line in recipe.group(1).splitlines() if "benchmarks/" in line]


class _Parsed(Exception):
    pass


@pytest.mark.parametrize("cmd", _bench_commands(), ids=lambda c: " ".join(c))
def test_make_bench_arguments_are_accepted(cmd: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise _Parsed(original(self, *args, **kwargs))  # an unknown option exits 2 inside original()

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", cmd)
    with pytest.raises(_Parsed):
        runpy.run_path(str(ROOT / cmd[0]), run_name="__main__")
