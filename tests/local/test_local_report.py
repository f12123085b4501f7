"""`synthctl report`: a self-contained HTML page that a browser's parser accepts as it is."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import html5lib

from synth_contract.store import FileStore

SYNTHCTL = [sys.executable, "-m", "parallel_synth.commands.cli"]


def _report(location: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYNTHCTL, "report", str(location), "--out", str(out)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_report_is_valid_self_contained_html_with_every_section(dataset: FileStore, tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.html"
    res = _report(dataset.uri, out)
    assert res.returncode == 0, res.stderr
    page = out.read_text()
    # A strict HTML5 parse (the algorithm browsers use): any parse error fails the test.
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    tree = parser.parse(page)
    headings = [h.text for h in tree.iter("h2")]
    assert headings == ["Category balance", "Coverage and diversity", "Quality", "Cost"]
    images = [img.get("src") for img in tree.iter("img")]
    assert len(images) >= 4 and all(src.startswith("data:image/png;base64,") for src in images)
    assert len(list(tree.iter("{http://www.w3.org/2000/svg}svg"))) >= len(doc_categories(page)) > 0  # inline
    assert not re.search(r'(src|href)="(https?:)?//', page), "the report must not load anything from outside"
    # The worst samples are shown with their thumbnails (the fake renderer's 32 px images).
    assert sum(1 for f in tree.iter("figure") if f.find("img") is not None) == 8
    doc = json.loads(dataset.read_bytes("dataset.json"))
    assert doc["coverage"]["samples"] == doc["samples"]["completed"]
    assert set(doc["coverage"]["categories"]) == set(doc["categories"])
    assert all(0.0 <= c["diversity"] <= 1.0 for c in doc["coverage"]["categories"].values())


def doc_categories(page: str) -> list[str]:
    return re.findall(r"<h3>(\w+): \d+ samples, diversity", page)


def test_an_unfinished_dataset_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    res = _report(tmp_path, tmp_path / "r.html")
    assert res.returncode == 2 and "dataset.json is missing" in res.stderr and "Traceback" not in res.stderr
