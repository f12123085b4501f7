"""A rendered dataset carries its strata: sample JSON, index column ``strata.<factor>``, dataset.json, report.

The real worker renders with the fake renderer (no Blender): two uniform shards, then two under a
segment that weights lighting's ``kind``; the index and dataset.json must show the same counts the
samples hold, and the weighted shards the weighted shares.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from builders import OPEN_GATE, RENDER, spec
from fake_renderer import FakeRenderer

from parallel_synth.dataset import report
from parallel_synth.dataset.index import write_index
from synth_contract import factors, layout
from synth_contract.store import FileStore
from synth_render import shards
from synth_render.worker import run_shard

CATS = [{"name": "lighting", "weight": 1}]
WEIGHTS = {"lighting": {"kind": {"sun": 7, "point": 1, "area": 1, "spot": 1}}}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, FileStore]:
    root = tmp_path_factory.mktemp("strata")
    s = spec(RENDER, samples=80, shardSize=20, categories=CATS, quality=OPEN_GATE,
             render={**RENDER["render"], "passes": ["rgb", "segmentation"]}, output={"uri": root.as_uri()},
             schedule=[{"fromShard": 2, "categories": CATS, "factors": WEIGHTS}])
    store = FileStore(Path(root) / "ds" / "v1")
    fake = FakeRenderer()
    for shard in range(4):
        assert run_shard(s, "ds", shard, store=store, renderer=fake).status == "committed"
    write_index(s, "ds", store, now=datetime(2026, 1, 1, tzinfo=UTC))
    return s, store


def _metas(store: FileStore, shard: int) -> list[dict[str, Any]]:
    return [json.loads(files["json"]) for _, files in shards.read_samples(store.read_bytes(layout.shard_path(shard)))]


def test_every_sample_json_names_its_factor_values(rendered: tuple[Any, FileStore]) -> None:
    _, store = rendered
    for meta in _metas(store, 0):
        names = {f.name for f in factors.FACTORS["lighting"]}
        assert names <= set(meta["strata"]) and "environment" in meta["strata"]
        assert meta["strata"]["kind"] == meta["params"]["kind"]


def test_the_index_has_strata_columns_and_the_weighted_shards_their_shares(rendered: tuple[Any, FileStore]) -> None:
    _, store = rendered
    table = pq.read_table(store.root / layout.INDEX_PARQUET).flatten()
    assert {"strata.kind", "strata.strength", "strata.environment", "strata.shape"} <= set(table.column_names)
    rows = table.select(["shard", "strata.kind", "strata.shape"]).to_pylist()
    assert all(r["strata.shape"] is None for r in rows)  # geometry's factor: null for lighting samples
    uniform = Counter(r["strata.kind"] for r in rows if r["shard"] < 2)
    weighted = Counter(r["strata.kind"] for r in rows if r["shard"] >= 2)
    assert uniform == {"sun": 10, "point": 10, "area": 10, "spot": 10}
    assert abs(weighted["sun"] - 28) <= 2 and sum(weighted.values()) == 40, weighted
    by_sql = dict(duckdb.sql(f"SELECT strata.kind, count(*) FROM '{store.root / layout.INDEX_PARQUET}' "
                             "WHERE shard >= 2 GROUP BY 1").fetchall())
    assert by_sql == dict(weighted)


def test_dataset_json_and_the_report_show_each_factors_balance(rendered: tuple[Any, FileStore]) -> None:
    _, store = rendered
    doc = json.loads((store.root / layout.DATASET_JSON).read_text())
    kind = doc["coverage"]["categories"]["lighting"]["strata"]["kind"]
    samples = [m for shard in range(4) for m in _metas(store, shard)]
    assert kind["counts"] == dict(Counter(m["strata"]["kind"] for m in samples))
    assert list(kind["counts"]) == ["sun", "point", "area", "spot"]  # every value, in the catalogue's order
    assert 0 < kind["balance"] < 1  # the weighted half skews it
    lights = doc["coverage"]["categories"]["lighting"]["strata"]["lights"]
    assert lights["balance"] == pytest.approx(1.0, abs=0.01)  # not weighted: even
    html = report.render_html(report.gather(store))
    assert "Strata balance" in html and f"sun {kind['counts']['sun']}, point {kind['counts']['point']}" in html
