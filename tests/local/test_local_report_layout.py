"""`synthctl report` laid out by a real browser (headless Chromium): the per-factor histograms of the
coverage section never overlap, and their titles and min/max labels neither run into each other nor
spill out of their panel (issue #24: in Chromium they overlapped and read ``10.50.166``).

Chromium loads the page with a script appended that measures every histogram panel and every piece
of text in it (``getBoundingClientRect`` of the text's range) and writes the boxes into the DOM,
which ``--dump-dom`` prints after the load. ``scripts/dev.sh test`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parallel_synth.dataset.report import ReportData, render_html

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (apt-get install chromium)")

MEASURE = """<script>
const box = r => ({l: r.left, t: r.top, r: r.right, b: r.bottom});
const panels = [...document.querySelectorAll('.hist')].map(p => {
  const texts = [];
  const walk = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (!n.textContent.trim() || n.parentElement.closest('title')) continue;  // tooltips are not drawn
    const range = document.createRange(); range.selectNodeContents(n);
    for (const r of range.getClientRects()) texts.push({text: n.textContent, ...box(r)});
  }
  return {box: box(p.getBoundingClientRect()), texts};
});
const out = document.createElement('pre'); out.id = 'boxes'; out.textContent = JSON.stringify(panels);
document.body.appendChild(out);
</script>"""

GAP = 4.0
"""Least space in CSS pixels between two labels on one line (less reads as one number)."""


def _numeric(lo: float, hi: float) -> dict[str, Any]:
    return {"kind": "numeric", "bins": list(np.linspace(lo, hi, 11)), "counts": [3, 5, 8, 13, 8, 5, 3, 2, 1, 1]}


def _data() -> ReportData:
    """Two categories of six panels each: wide labels (``-1.23e+04``), long factor names, categorical counts."""
    params = {"light_intensity": _numeric(0.166, 10.5), "camera_distance": _numeric(-12345.6, 12345.6),
              "a_factor_with_a_very_long_name_indeed": _numeric(1e-05, 99999.0),
              "object_scale": _numeric(0.5, 2.0), "roughness": _numeric(0.0, 1.0), "yaw": _numeric(-180.0, 180.0)}
    classes = {f"classname_{i}_with_suffix": 10 - i for i in range(8)}
    cats = {name: {"samples": 40, "diversity": 0.8, "params": params, "classes": classes}
            for name in ("lighting", "camera")}
    doc = {"name": "layout", "version": "1", "samples": {"target": 80, "completed": 80},
           "categories": {c: {"target": 40, "completed": 40, "quarantined": 0} for c in cats},
           "coverage": {"diversity": 0.8, "samples": 80, "categories": cats}, "quality": {"mean": 0.9}}
    return ReportData(doc=doc, scores=np.linspace(0.5, 1.0, 80), categories=["lighting", "camera"] * 40)


def _layout(page: str, tmp_path: Path, width: int) -> list[dict[str, Any]]:
    html = tmp_path / f"report-{width}.html"
    html.write_text(page.replace("</body>", MEASURE + "</body>"))
    assert CHROMIUM is not None
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},3000",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", html.as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="boxes">(.*?)</pre>', res.stdout, re.S)
    assert found, f"Chromium printed no layout (exit {res.returncode}): {res.stderr[-500:]}"
    panels: list[dict[str, Any]] = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    return panels


def _intersect(a: dict[str, float], b: dict[str, float], *, gap: float = 0.0) -> bool:
    return a["l"] < b["r"] + gap and b["l"] < a["r"] + gap and a["t"] < b["b"] and b["t"] < a["b"]


@pytest.mark.parametrize("width", [1280, 700])
def test_histogram_panels_and_their_labels_never_overlap_in_chromium(tmp_path: Path, width: int) -> None:
    panels = _layout(render_html(_data()), tmp_path, width)
    assert len(panels) == 2 * 7, "six factors (MAX_PARAM_PLOTS) and the classes per category"
    for a, b in combinations(panels, 2):
        assert not _intersect(a["box"], b["box"]), f"panels overlap: {a['box']} {b['box']}"
    texts = [t for p in panels for t in p["texts"]]
    assert any(t["text"] == "0.166" for t in texts) and any(t["text"] == "10.5" for t in texts)
    for a, b in combinations(texts, 2):
        assert not _intersect(a, b, gap=GAP), f"labels run together: {a['text']!r} and {b['text']!r}"
    for p in panels:
        for t in p["texts"]:  # drawn inside its own panel: not clipped, not over a neighbour
            assert (p["box"]["l"] - 0.5 <= t["l"] and t["r"] <= p["box"]["r"] + 0.5
                    and p["box"]["t"] - 0.5 <= t["t"] and t["b"] <= p["box"]["b"] + 0.5), (t, p["box"])
