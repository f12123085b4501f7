"""The contributor docs point at files that exist (issue #22 item 13).

docs/quality.md named ``operator/parallel_synth/planning.py`` and ``immutability.py`` long after
they moved to ``contract/``, and six modules cited a ``DESIGN.md`` that is not in the repository.
docs/ARCHITECTURE.md maps each concept to its file; every file it names must exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASES = [ROOT, ROOT / "operator" / "parallel_synth", ROOT / "contract" / "synth_contract",
         ROOT / "renderer-image" / "synth_render"]
PATH = re.compile(r"`([\w./-]+\.(?:py|md|yaml|sh)|[\w-]+/(?:[\w-]+/)*)`")


def named_paths(doc: Path) -> list[str]:
    return sorted({m for m in PATH.findall(doc.read_text()) if "{" not in m and not m.startswith(".")})


@pytest.mark.parametrize("doc", ["ARCHITECTURE.md", "quality.md"])
def test_every_file_a_doc_names_exists(doc: str) -> None:
    paths = named_paths(ROOT / "docs" / doc)
    assert paths
    missing = [p for p in paths if not any((base / p).exists() for base in BASES)]
    assert missing == [], f"docs/{doc} names files that do not exist: {missing}"


def test_architecture_names_every_decision_and_cluster_module() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    modules = [f"{d}/{p.name}" for d in ("decisions", "cluster")
               for p in sorted((ROOT / "operator" / "parallel_synth" / d).glob("*.py")) if p.name != "__init__.py"]
    assert [m for m in modules if m not in text] == []


def test_no_operator_module_cites_a_file_outside_the_repository() -> None:
    cites = [str(p.relative_to(ROOT)) for d in ("operator", "contract", "tests")
             for p in (ROOT / d).rglob("*.py") if "DESIGN.md" in p.read_text() and p.name != "test_op_docs.py"]
    assert cites == []
