"""Racing writers: two real worker processes commit the same shard at the same instant, many times.

Each round starts two ``race_writer.py`` processes on a fresh dataset root; their stores meet at
a barrier right before the conditional create of the tar, the index part or the manifest (the
rounds cycle through the three, and a round without barrier), so both issue that create in the
same instant. A round passes when both exit 0, exactly one reports ``committed`` (the other
"already committed": ``skipped``), and the shard in the store is whole and byte-identical to
the one a single writer commits (tar and index part; the manifest's sha256, bytes and rows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synth_contract import layout
from synth_contract.store import Store, open_store
from synth_render.manifests import verify_shard

WRITER = str(Path(__file__).with_name("race_writer.py"))
POINTS = ("manifest", "tar", "part", "none")
SPEC: dict[str, Any] = {
    "samples": 3, "seed": 5, "shardSize": 3, "image": "renderer:test",
    "render": {"resolutions": [{"width": 32, "height": 32}], "samples": {"min": 1, "max": 1}, "denoise": False,
               "passes": ["rgb", "depth", "segmentation"]},
    "quality": {"minScore": 0.0, "minPassRate": 0.0, "maxRerenders": 0},
    "categories": [{"name": "vehicles", "weight": 1}, {"name": "characters", "weight": 1}],
    "output": {"uri": "file:///unused"},
}
"""One shard of three 32 px samples with the fake renderer: a round takes the two processes' start-up."""


@dataclass
class Round:
    at: str
    statuses: list[str]
    exits: list[int]
    problems: list[str] = field(default_factory=list)

    @property
    def double(self) -> bool:
        return self.statuses.count("committed") > 1


@dataclass
class RaceResult:
    rounds: list[Round] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def double_commits(self) -> int:
        return sum(r.double for r in self.rounds)

    @property
    def problems(self) -> list[str]:
        return [f"round {i} (at {r.at}): {p}" for i, r in enumerate(self.rounds) for p in r.problems]


def _run_writers(root: str, barrier: Path, at: str, env: dict[str, str], *,
                 writers: int = 2) -> tuple[list[str], list[int], str]:
    procs = [subprocess.Popen([sys.executable, WRITER, root, "0", str(barrier), at], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(writers)]
    statuses, exits, logs = [], [], ""
    for p in procs:
        out, err = p.communicate(timeout=180)
        exits.append(p.returncode)
        lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        statuses.append(lines[-1]["status"] if lines else "crashed")
        logs += err[-2000:]
    return statuses, exits, logs


def _shard_bytes(store: Store) -> dict[str, bytes | None]:
    return {rel: store.read_bytes(rel) for rel in (layout.shard_path(0), layout.index_part_path(0))}


def _same_commit(store: Store, ref: Store) -> list[str]:
    problems = verify_shard(store, 0, deep=True)
    for rel, data in _shard_bytes(store).items():
        if data != _shard_bytes(ref)[rel]:
            problems.append(f"{rel} differs from a single writer's")
    got, want = (json.loads(s.read_bytes(layout.manifest_path(0)) or b"{}") for s in (store, ref))
    for key in ("sha256", "bytes", "samples", "indexPart"):
        if got.get(key) != want.get(key):
            problems.append(f"manifest {key} differs from a single writer's")
    return problems


def race(rounds: int, *, root_of: Callable[[str], str], env: dict[str, str], workdir: Path,
         on_round: Callable[[int, Round], None] | None = None) -> RaceResult:
    """``rounds`` races on fresh roots (``root_of(name)`` gives a location), against one reference commit."""
    t0 = time.monotonic()
    env = {**os.environ, **env, "SYNTH_SPEC_JSON": json.dumps(SPEC)}
    ref_root = root_of("reference")
    statuses, exits, logs = _run_writers(ref_root, workdir / "barrier-ref", "none", env, writers=1)
    ref = open_store(ref_root)
    result = RaceResult()
    if verify_shard(ref, 0, deep=True):
        result.rounds.append(Round("reference", statuses, exits, [f"the reference commit failed: {logs[-500:]}"]))
        return result
    for i in range(rounds):
        at = POINTS[i % len(POINTS)]
        root = root_of(f"round-{i}-{uuid.uuid4().hex[:6]}")
        statuses, exits, logs = _run_writers(root, workdir / f"barrier-{i}", at, env)
        r = Round(at, statuses, exits)
        if exits != [0, 0]:
            r.problems.append(f"exit codes {exits}: {logs[-600:]}")
        if sorted(statuses) != ["committed", "skipped"]:
            r.problems.append(f"statuses {statuses}: exactly one writer must commit")
        r.problems += _same_commit(open_store(root), ref)
        result.rounds.append(r)
        if on_round is not None:
            on_round(i, r)
    result.seconds = time.monotonic() - t0
    return result


async def racing_writers(workdir: Path, rounds: int | None = None) -> Any:
    """The reliability report's scenario: ``$RACE_ROUNDS`` (default 20) races on moto's S3."""
    from box.s3 import MotoS3
    from box.scenarios import ScenarioResult

    n = rounds or int(os.environ.get("RACE_ROUNDS", "20"))
    workdir.mkdir(parents=True, exist_ok=True)
    s3 = MotoS3().start()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        s3.client().create_bucket(Bucket="race")
        env = {"AWS_ENDPOINT_URL": s3.url, "AWS_ACCESS_KEY_ID": "harness", "AWS_SECRET_ACCESS_KEY": "harness",
               "AWS_REGION": "us-east-1"}
        os.environ.update(env)  # the harness's own reads of the bucket
        res = race(n, root_of=lambda name: f"s3://race/{name}", env=env, workdir=Path(tempfile.mkdtemp(dir=workdir)))
    finally:
        s3.stop()
    committed = sum(r.statuses.count("committed") for r in res.rounds)
    return ScenarioResult(
        name="racing-writers", faults={"rounds": len(res.rounds), "writers per round": 2}, shards=len(res.rounds),
        samples=len(res.rounds) * SPEC["samples"], phase="n/a (no operator)",
        committed_samples=sum(SPEC["samples"] for r in res.rounds if "committed" in r.statuses),
        validate_ok=not res.problems, validate_problems=res.problems[:5], status_matches=True,
        status_detail="no operator in this scenario", counters_match=True, counters_detail="n/a",
        preemptions_expected="0", retries_expected="0",
        committed_shards=committed, commits=committed,
        double_commits={f"round-{i}/manifests/00000000.json": r.statuses.count("committed")
                        for i, r in enumerate(res.rounds) if r.double},
        started=started, seconds=res.seconds)


def scenario() -> Any:
    """The "racing writers" row of the reliability report (``scripts/reliability_report.py``)."""
    from box.scenarios import Scenario

    return Scenario("racing-writers", "two writer processes commit the same shard in the same instant, "
                    "$RACE_ROUNDS rounds (default 20) on moto's S3", racing_writers)
