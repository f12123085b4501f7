"""synthctl feedback: the arithmetic on made-up losses, the segment it writes, and every bad input.

The arithmetic is checked as plain functions (shrinkage, bounded shares, the plan); the command
runs against a small dataset rendered by the real worker with the fake renderer and indexed, so
the join goes through the real index.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from builders import OPEN_GATE, RENDER, manifest, spec, wire
from click.testing import CliRunner
from fake_renderer import FakeRenderer

from parallel_synth.commands.cli import cli
from parallel_synth.dataset import feedback as fb
from parallel_synth.dataset.index import write_index
from synth_contract import layout
from synth_contract.api import SynthDataset
from synth_contract.store import FileStore
from synth_render.worker import run_shard

SYNTHCTL = [sys.executable, "-m", "parallel_synth.commands.cli"]
CATS = [{"name": "lighting", "weight": 1}, {"name": "camera", "weight": 1}]


# --------------------------------------------------------------------------- arithmetic


def test_few_samples_are_shrunk_toward_the_parent_and_many_are_not() -> None:
    few = fb.shrunk([10.0, 10.0], parent=1.0, prior=20, category="c")
    many = fb.shrunk([10.0] * 2000, parent=1.0, prior=20, category="c")
    assert few.estimate == pytest.approx((2 * 10 + 20 * 1) / 22)
    assert many.estimate == pytest.approx((2000 * 10 + 20) / 2020)
    none = fb.shrunk([], parent=3.0, prior=20, category="c")
    assert none.n == 0 and none.estimate == 3.0 and math.isinf(none.half_width)


def test_the_interval_narrows_with_more_samples() -> None:
    rng = random.Random(0)
    small = fb.shrunk([rng.gauss(1, 0.5) for _ in range(10)], parent=1.0, prior=5, category="c")
    large = fb.shrunk([rng.gauss(1, 0.5) for _ in range(1000)], parent=1.0, prior=5, category="c")
    assert large.half_width < small.half_width / 5


@pytest.mark.parametrize(("target", "current", "expected"), [
    # equal targets: nothing moves
    ({"a": 1, "b": 1}, {"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}),
    # a wants everything: capped at 2x its share, b takes the rest
    ({"a": 1, "b": 0}, {"a": 0.25, "b": 0.75}, {"a": 0.5, "b": 0.5}),
    # b wants nothing: held at the floor (0.25 / 2 values = 0.125), though the cap would allow 0.25 / 2
    ({"a": 1, "b": 0}, {"a": 0.75, "b": 0.25}, {"a": 0.875, "b": 0.125}),
    # inside the bounds: proportional to the target
    ({"a": 0.3, "b": 0.7}, {"a": 0.4, "b": 0.6}, {"a": 0.3, "b": 0.7}),
])
def test_bounded_shares(target: dict[str, float], current: dict[str, float], expected: dict[str, float]) -> None:
    out = fb.bounded_shares(target, current, fb.Settings(floor=0.25, max_step=2.0))
    assert out == pytest.approx(expected, abs=1e-6)
    assert sum(out.values()) == pytest.approx(1.0)


def test_bounded_shares_never_go_under_the_floor_whatever_the_target() -> None:
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(2, 6)
        current = [rng.random() + 0.01 for _ in range(n)]
        cur = {str(i): c / sum(current) for i, c in enumerate(current)}
        target = {str(i): rng.random() ** 4 for i in range(n)}
        out = fb.bounded_shares(target, cur, fb.Settings(floor=0.2, max_step=1.5))
        assert sum(out.values()) == pytest.approx(1.0)
        for k, v in out.items():
            assert v >= 0.2 / n - 1e-9
            assert v <= max(cur[k] * 1.5, 0.2 / n) + 1e-9


def _samples(losses: dict[str, float], n: int = 40) -> list[fb.Sample]:
    """n lighting samples per kind, all other lighting factors spread evenly, loss by kind (plus noise)."""
    rng = random.Random(7)
    out = []
    for kind, loss in losses.items():
        for i in range(n):
            strata = {"kind": kind, "lights": ("one", "two", "three", "four")[i % 4],
                      "strength": ("dim", "medium", "bright")[i % 3]}
            out.append(fb.Sample(key=f"{kind}{i}", category="lighting", strata=strata,
                                 loss=loss * rng.uniform(0.9, 1.1)))
    return out


def test_the_plan_gives_more_samples_where_the_loss_is_high_within_the_cap() -> None:
    s = spec(RENDER, samples=80, shardSize=20, categories=[{"name": "lighting"}])
    plan = fb.plan_next(s, _samples({"sun": 4.0, "point": 1.0, "area": 1.0, "spot": 1.0}))
    kind = plan.factors["lighting"]["kind"]
    assert kind["sun"] > 0.25 and kind["sun"] <= 0.5 + 1e-4  # more, at most doubled
    assert kind["point"] == pytest.approx(kind["area"], abs=0.02) and kind["point"] < 0.25
    assert sum(kind.values()) == pytest.approx(1.0, abs=1e-3)
    lights = plan.factors["lighting"]["lights"]  # the loss does not depend on it: it hardly moves
    assert all(abs(v - 0.25) < 0.02 for v in lights.values()), lights
    assert plan.categories == {"lighting": 1.0}
    why = {(c.estimate.factor, c.estimate.value): c.why for c in plan.changes}
    assert "more" in why[("kind", "sun")] and "fewer" in why[("kind", "point")]


def test_the_plan_moves_category_weights_toward_the_worse_category() -> None:
    s = spec(RENDER, samples=80, shardSize=20, categories=CATS)
    rows = [fb.Sample(key=f"l{i}", category="lighting", strata={}, loss=2.0) for i in range(50)]
    rows += [fb.Sample(key=f"c{i}", category="camera", strata={}, loss=1.0) for i in range(50)]
    plan = fb.plan_next(s, rows)
    assert plan.categories["lighting"] > 0.6 > 0.4 > plan.categories["camera"]


def test_equal_losses_keep_uneven_natural_shares() -> None:
    s = spec(RENDER, samples=80, shardSize=20, categories=[{"name": "camera"}])
    rows = [fb.Sample(key=f"k{i}", category="camera", strata={"depthOfField": "sharp" if i % 5 < 3 else "shallow"},
                      loss=1.0) for i in range(100)]
    plan = fb.plan_next(s, rows)
    assert plan.factors["camera"]["depthOfField"] == pytest.approx({"sharp": 0.6, "shallow": 0.4}, abs=1e-3)


def test_the_current_shares_come_from_the_last_segment() -> None:
    s = spec(RENDER, samples=80, shardSize=20, categories=[{"name": "lighting"}],
             schedule=[{"fromShard": 2, "categories": [{"name": "lighting"}],
                        "factors": {"lighting": {"kind": {"sun": 2, "point": 1, "area": 1, "spot": 0}}}}])
    _, shares = fb.current_shares(s)
    assert shares["lighting"]["kind"] == {"sun": 0.5, "point": 0.25, "area": 0.25, "spot": 0.0}
    assert fb.next_from_shard(s) == 4  # after the plan's 4 shards


LOSS_CASES = [
    # (case, keys, losses, datasets, words)
    ("NaN loss", ["a", "b"], [1.0, math.nan], [], "NaN, infinite or negative (first: row 2"),
    ("negative loss", ["a", "b"], [-0.5, 1.0], [], "row 1, loss -0.5"),
    ("missing loss", ["a", "b"], [1.0, None], [], "missing"),
    ("infinite loss", ["a", "b"], [math.inf, 1.0], [], "infinite"),
    ("duplicate keys", ["a", "a", "b"], [1.0, 2.0, 1.0], [], "appear more than once (first: a)"),
    ("unknown keys", ["a", "zz"], [1.0, 1.0], [], "1 key(s) are not samples of 'ds' (first: zz)"),
    ("another dataset's keys", ["x1", "x2"], [1.0, 1.0], [], "are these another dataset's losses"),
    ("another dataset named", ["a", "b"], [1.0, 1.0], ["ds", "other"], "rows of dataset 'other'"),
    ("a row without a key", [None, "b"], [1.0, 1.0], [], "without a key or index (first: row 1)"),
    ("too few rows", ["a", "b"], [1.0, 1.0], [], "only 2 loss row(s): feedback needs at least 20"),
]


@pytest.mark.parametrize(("case", "keys", "losses", "datasets", "words"), LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_every_bad_losses_table_is_named(case: str, keys: list[str | None], losses: list[float | None],
                                         datasets: list[str | None], words: str) -> None:
    problems = fb.loss_problems(keys, losses, known={"a", "b"}, dataset="ds", datasets=datasets)
    assert any(words in p for p in problems), problems


def test_a_good_losses_table_has_no_problems() -> None:
    keys = [f"k{i}" for i in range(30)]
    assert fb.loss_problems(keys, [0.0] * 30, known=set(keys), dataset="ds") == []


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """60 samples (lighting and camera, 3 shards of 20) rendered by the fake renderer and indexed."""
    root = tmp_path_factory.mktemp("feedback")
    w = wire(RENDER, samples=60, shardSize=20, categories=CATS, quality=OPEN_GATE,
             render={**RENDER["render"], "passes": ["rgb", "segmentation"]}, output={"uri": (root / "data").as_uri()},
             schedule=[{"fromShard": 1, "categories": CATS, "factors": {"camera": {"focal": {"tele": 2}}}}])
    s = spec(w)
    store = FileStore(root / "data" / "ds" / "v1")
    for shard in range(3):
        assert run_shard(s, "ds", shard, store=store, renderer=FakeRenderer()).status == "committed"
    write_index(s, "ds", store, now=datetime(2026, 1, 1, tzinfo=UTC))
    rows = pq.read_table(store.root / layout.INDEX_PARQUET).flatten().select(
        ["key", "index", "category", "strata.kind"]).to_pylist()
    (root / "ds.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(manifest(w, name="ds")))))  # no aliases
    return {"root": root, "store": store, "rows": rows, "manifest": root / "ds.yaml"}


def _loss(row: dict[str, Any]) -> float:
    return 3.0 if row["strata.kind"] == "sun" else 1.0 if row["category"] == "lighting" else 0.5


@dataclass
class _Result:
    returncode: int
    stdout: str
    stderr: str


def _synthctl(*argv: str) -> _Result:
    """``synthctl ARGV`` in this process (click's runner: exit code, stdout and stderr apart)."""
    res = CliRunner().invoke(cli, list(argv))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return _Result(res.exit_code, res.stdout, res.stderr)


def _run(dataset: dict[str, Any], losses: Path, out: Path, *extra: str) -> _Result:
    return _synthctl("feedback", str(dataset["store"].root), "--losses", str(losses), "--manifest",
                     str(dataset["manifest"]), "--out", str(out), *extra)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_feedback_writes_a_manifest_that_validate_manifest_old_accepts(dataset: dict[str, Any], tmp_path: Path,
                                                                       fmt: str) -> None:
    rows = [{"key": r["key"], "loss": _loss(r), "epoch": 3} for r in dataset["rows"]]
    losses = tmp_path / f"losses.{fmt}"
    if fmt == "csv":
        losses.write_text("key,loss,epoch\n" + "".join(f"{r['key']},{r['loss']},{r['epoch']}\n" for r in rows))
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), losses)
    else:
        losses.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "next.yaml"
    res = _run(dataset, losses, out)
    assert res.returncode == 0, res.stderr
    assert "lighting.kind=sun" in res.stdout and "why" in res.stdout.splitlines()[1]
    old, new = yaml.safe_load(dataset["manifest"].read_text()), yaml.safe_load(out.read_text())
    assert new["spec"]["schedule"][:-1] == old["spec"]["schedule"]  # the existing segment untouched
    seg = new["spec"]["schedule"][-1]
    assert seg["fromShard"] == 3 and new["spec"]["samples"] == 120
    assert seg["factors"]["lighting"]["kind"]["sun"] > 0.25
    assert {k: v for k, v in new["spec"].items() if k not in ("schedule", "samples")} == \
        {k: v for k, v in old["spec"].items() if k not in ("schedule", "samples")}
    SynthDataset.model_validate(new)
    check = subprocess.run([*SYNTHCTL, "validate-manifest", "--old", str(dataset["manifest"]), str(out)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stderr


def test_the_installed_command_runs_end_to_end_and_can_update_the_manifest_in_place(dataset: dict[str, Any],
                                                                                      tmp_path: Path) -> None:
    manifest_copy = tmp_path / "ds.yaml"
    manifest_copy.write_text(dataset["manifest"].read_text())
    losses = _csv(tmp_path, ["key,loss"] + [f"{r['key']},{_loss(r)}" for r in dataset["rows"]])
    res = subprocess.run([*SYNTHCTL, "feedback", str(dataset["store"].root), "--losses", str(losses), "--manifest",
                          str(manifest_copy), "--out", str(manifest_copy)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert len(yaml.safe_load(manifest_copy.read_text())["spec"]["schedule"]) == 2


def test_the_installed_command_exits_1_on_bad_losses_never_aborting(dataset: dict[str, Any], tmp_path: Path) -> None:
    """The process's own exit code: Arrow's thread pool once aborted synthctl at teardown (exit -6)."""
    losses = _csv(tmp_path, ["key,loss"] + [f"{r['key']},{'nan' if i == 3 else 1}" for i, r in enumerate(dataset["rows"])])
    for _ in range(3):
        res = subprocess.run([*SYNTHCTL, "feedback", str(dataset["store"].root), "--losses", str(losses), "--manifest",
                              str(dataset["manifest"]), "--out", str(tmp_path / "next.yaml")],
                             capture_output=True, text=True, timeout=120, check=False)
        assert res.returncode == 1 and "terminate called" not in res.stderr, res.stderr


def test_losses_by_index_and_samples_option(dataset: dict[str, Any], tmp_path: Path) -> None:
    losses = tmp_path / "losses.csv"
    losses.write_text("index,loss\n" + "".join(f"{r['index']},{_loss(r)}\n" for r in dataset["rows"]))
    out = tmp_path / "next.yaml"
    res = _run(dataset, losses, out, "--samples", "40")
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(out.read_text())["spec"]["samples"] == 100


def _csv(tmp_path: Path, lines: list[str], name: str = "losses.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


BAD_FILES = [
    # (case, content maker, exit code, words)
    ("NaN loss", lambda rows: ["key,loss"] + [f"{r['key']},{'nan' if i == 3 else 1}" for i, r in enumerate(rows)],
     1, "NaN"),
    ("negative loss", lambda rows: ["key,loss"] + [f"{r['key']},{-1 if i == 0 else 1}" for i, r in enumerate(rows)],
     1, "negative"),
    ("duplicate keys", lambda rows: ["key,loss"] + [f"{r['key']},1" for r in rows] + [f"{rows[0]['key']},2"],
     1, "more than once"),
    ("unknown keys", lambda rows: ["key,loss"] + [f"{r['key']},1" for r in rows] + ["000000009999,1"],
     1, "not samples of 'ds'"),
    ("another dataset's keys", lambda rows: ["key,loss"] + [f"other-{i},1" for i in range(40)],
     1, "another dataset's losses"),
    ("another dataset's name", lambda rows: ["key,loss,dataset"] + [f"{r['key']},1,cars" for r in rows],
     1, "rows of dataset 'cars'"),
    ("too few rows", lambda rows: ["key,loss"] + [f"{r['key']},1" for r in rows[:5]], 1, "needs at least 20"),
    ("a loss that is not a number", lambda rows: ["key,loss"] + [f"{r['key']},{'high' if i == 2 else 1}"
                                                               for i, r in enumerate(rows)], 1,
     "not numbers (first: row 3, loss 'high')"),
    ("no loss column", lambda rows: ["key,score"] + [f"{r['key']},1" for r in rows], 2, "no 'loss' column"),
    ("no key column", lambda rows: ["name,loss"] + [f"{r['key']},1" for r in rows], 2, "no 'key' or 'index' column"),
]


@pytest.mark.parametrize(("case", "make", "code", "words"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_losses_file_is_one_line_and_writes_nothing(dataset: dict[str, Any], tmp_path: Path, case: str,
                                                          make: Any, code: int, words: str) -> None:
    out = tmp_path / "next.yaml"
    res = _run(dataset, _csv(tmp_path, make(dataset["rows"])), out)
    assert res.returncode == code, (case, res.stderr)
    assert words in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not out.exists()


def test_unreadable_inputs_are_exit_2_and_write_nothing(dataset: dict[str, Any], tmp_path: Path) -> None:
    good = _csv(tmp_path, ["key,loss"] + [f"{r['key']},1" for r in dataset["rows"]])
    out = tmp_path / "next.yaml"
    cases = [
        [*SYNTHCTL, "feedback", str(dataset["store"].root), "--losses", str(tmp_path / "missing.csv"),
         "--manifest", str(dataset["manifest"]), "--out", str(out)],
        [*SYNTHCTL, "feedback", str(dataset["store"].root), "--losses", str(_csv(tmp_path, ["a"], "l.txt")),
         "--manifest", str(dataset["manifest"]), "--out", str(out)],
        [*SYNTHCTL, "feedback", str(tmp_path), "--losses", str(good), "--manifest", str(dataset["manifest"]),
         "--out", str(out)],  # not a dataset: no index
        [*SYNTHCTL, "feedback", str(dataset["store"].root), "--losses", str(good),
         "--manifest", str(_csv(tmp_path, ["a: ["], "broken.yaml")), "--out", str(out)],
    ]
    for argv in cases:
        res = _synthctl(*argv[len(SYNTHCTL):])
        assert res.returncode == 2, (argv, res.stderr)
        assert "Traceback" not in res.stderr and res.stderr.strip()
    assert not out.exists()


def test_a_manifest_of_another_dataset_is_refused(dataset: dict[str, Any], tmp_path: Path) -> None:
    other = yaml.safe_load(dataset["manifest"].read_text())
    other["metadata"]["name"] = "cars"
    (tmp_path / "cars.yaml").write_text(yaml.safe_dump(other))
    good = _csv(tmp_path, ["key,loss"] + [f"{r['key']},1" for r in dataset["rows"]])
    out = tmp_path / "next.yaml"
    res = _synthctl("feedback", str(dataset["store"].root), "--losses", str(good), "--manifest",
                    str(tmp_path / "cars.yaml"), "--out", str(out))
    assert res.returncode == 2 and "'cars'" in res.stderr and not out.exists()


def test_feedback_twice_appends_a_second_segment_and_keeps_the_first(dataset: dict[str, Any], tmp_path: Path) -> None:
    losses = _csv(tmp_path, ["key,loss"] + [f"{r['key']},{_loss(r)}" for r in dataset["rows"]])
    first, second = tmp_path / "one.yaml", tmp_path / "two.yaml"
    assert _run(dataset, losses, first).returncode == 0
    res = _synthctl("feedback", str(dataset["store"].root), "--losses", str(losses), "--manifest", str(first),
                    "--out", str(second))
    assert res.returncode == 0, res.stderr
    one, two = yaml.safe_load(first.read_text()), yaml.safe_load(second.read_text())
    assert two["spec"]["schedule"][:2] == one["spec"]["schedule"]
    assert two["spec"]["schedule"][2]["fromShard"] == 6  # after the 6 shards the first feedback planned


def test_the_api_server_takes_the_new_manifest_as_an_update_of_the_started_dataset(dataset: dict[str, Any],
                                                                                 tmp_path: Path) -> None:
    """The CRD's CEL rules (append-only schedule included) accept feedback's output over the running object."""
    from cel_eval import cel_violations

    from parallel_synth.commands import crds

    schema = crds.synthdataset_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    losses = _csv(tmp_path, ["key,loss"] + [f"{r['key']},{_loss(r)}" for r in dataset["rows"]])
    out = tmp_path / "next.yaml"
    assert _run(dataset, losses, out).returncode == 0
    status = {"nextShard": 3, "shards": {"completed": 3}}  # every shard of the current plan handed out
    old = {**SynthDataset.model_validate(yaml.safe_load(dataset["manifest"].read_text())).wire(), "status": status}
    new = {**SynthDataset.model_validate(yaml.safe_load(out.read_text())).wire(), "status": status}
    assert cel_violations(schema, new, old=old) == []
    # ... and once it is stored, its weights are as fixed as any segment's: an edit is refused
    edited = yaml.safe_load(out.read_text())
    edited["spec"]["schedule"][-1]["factors"]["lighting"]["kind"]["sun"] = 0.01
    edited_w = {**SynthDataset.model_validate(edited).wire(), "status": status}
    assert any("append-only" in m for _, m in cel_violations(schema, edited_w, old=new))
