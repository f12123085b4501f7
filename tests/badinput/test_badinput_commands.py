"""Every synthctl command against the hostile corpus of ``corpus.py`` (one case per test).

Each case runs the real ``synthctl`` in a subprocess on its own tampered copy of one small dataset
rendered by the fake renderer (built once per session): the exit code DESIGN gives, one message
naming the file or field, no traceback, no hang, bounded memory, nothing written into the dataset
it reads or into the working directory. ``scripts/badinput_report.py`` prints the same corpus as a
table of tracebacks and hangs per command.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import corpus
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CASES = corpus.all_cases()


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return corpus.build_base(tmp_path_factory.mktemp("badinput-base"))


@pytest.fixture(scope="session")
def port() -> Iterator[int]:
    with corpus.black_hole() as p:
        yield p


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_cleanly(case: corpus.Case, base: Path, port: int, tmp_path: Path) -> None:
    outcome, problems = corpus.run_and_judge(case, tmp_path / "case", base=base, port=port)
    assert not problems, f"{case.id}: {problems}; exit {outcome.code}; output:\n{outcome.out[-2000:]}"


def test_the_pristine_dataset_passes_every_command(base: Path, port: int, tmp_path: Path) -> None:
    """The corpus can fail: the same commands on the untouched dataset exit 0 (so a refusal is the damage's)."""
    for command in ("validate", "export", "export nerf", "preview", "report"):
        case = corpus._dataset("pristine", command, lambda ds: None, {0}, None)
        outcome, problems = corpus.run_and_judge(case, tmp_path / command.replace(" ", "-"), base=base, port=port)
        assert not problems, f"{command}: {problems}\n{outcome.out[-2000:]}"
