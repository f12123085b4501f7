"""Loading a dataset exactly as the README (and `generate`'s hint) says keeps depth and masks exact.

The code is parsed out of README.md and executed, so the README cannot drift from what works.
The fake renderer writes real 16-bit depth PNGs: background 60000, object pixels 1000 x id.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from parallel_synth.commands.generate import _how_to_load
from synth_contract.store import FileStore

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_loading_block() -> str:
    text = README.read_text()
    at = text.index("The data lands in `./data/quickstart/v1/`. Load it")
    block = re.search(r"```python\n(.*?)```", text[at:], re.S)
    assert block, "no python block after 'Load it' in README.md"
    return block.group(1)


def _check_exact(ds: Any) -> None:
    n = 0
    for s in ds:
        depth, seg, meta = s["depth.png"], s["seg.png"], s["json"]
        assert isinstance(depth, np.ndarray) and depth.dtype == np.uint16 and depth.shape == (32, 32)
        assert isinstance(seg, np.ndarray) and seg.ndim == 2
        assert (depth == np.where(seg == 0, 60000, 1000 * seg.astype(np.int64))).all(), s["__key__"]
        assert set(np.unique(seg)) - {0} == {o["id"] for o in meta["objects"]}
        for o in meta["objects"]:
            ys, xs = np.nonzero(seg == o["id"])
            assert [xs.min(), ys.min(), xs.max(), ys.max()] == o["bbox"]
        assert s["png"].size == (32, 32)
        n += 1
    assert n == 110


def test_readme_recipe_keeps_depth_and_seg_exact(dataset: FileStore, monkeypatch: Any, capsys: Any) -> None:
    code = readme_loading_block()
    assert 'decode("pil")' not in code and 'decode("rgb")' not in code
    monkeypatch.chdir(dataset.root.parents[2])  # the README's relative paths: data/quickstart/v1/...
    (dataset.root.parents[2] / "data" / "quickstart").mkdir(parents=True)
    (dataset.root.parents[2] / "data" / "quickstart" / "v1").symlink_to(dataset.root)
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert "000000000000" in capsys.readouterr().out  # its own print ran on the first sample
    _check_exact(scope["ds"])
    assert scope["index"].num_rows == 110


def test_generate_hint_keeps_depth_and_seg_exact(dataset: FileStore) -> None:
    doc = json.loads((dataset.root / "dataset.json").read_text())
    hint = _how_to_load(dataset.uri, True, doc)
    code = textwrap.dedent(hint.split("Load it", 1)[1].split("\n", 1)[1])
    assert 'decode("rgb")' not in code
    scope: dict[str, Any] = {}
    exec(compile(code, "generate-hint", "exec"), scope)
    _check_exact(scope["ds"])
