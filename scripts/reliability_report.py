#!/usr/bin/env python
"""Rerun the reliability scenarios in the run-in-a-box harness and write their table to docs/reliability.md.

Usage: ``.venv/bin/python scripts/reliability_report.py [--only NAME ...] [--json OUT] [--keep DIR]``

Each scenario (tests/reliability/box/scenarios.py) renders a tiny dataset with the real operator and
real renderer pods while one kind of fault is injected, then checks ``synthctl validate``, that every
sample index is in the bucket exactly once, that no shard was committed twice and every tar is the one
its manifest committed, that the SynthDataset status equals the bucket, and that ``status.preemptions``
and ``status.retries`` match the injected faults. The table replaces the text between the ``results``
markers of docs/reliability.md; the rest of the file (what the harness simulates, findings) is left as
written. The table is stamped with the date of the run it shows (also with ``--from-json``), not with
the date it was rendered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from box.racing import scenario as racing_writers  # noqa: E402
from box.scenarios import SCENARIOS, ScenarioResult  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _faults(r: ScenarioResult) -> str:
    return "<br>".join(f"{k}: {v}" for k, v in r.faults.items()) or "none"


def run_date(results: list[ScenarioResult]) -> str:
    """When the shown run started (its first scenario), as ``YYYY-MM-DD HH:MM UTC``."""
    starts = sorted(datetime.fromisoformat(r.started).astimezone(UTC) for r in results if r.started)
    return starts[0].strftime("%Y-%m-%d %H:%M UTC") if starts else "an unrecorded date"


def _counter(got: int, want: str) -> str:
    return f"{got} / {want}" if str(got) == want or "-" in want else f"**{got} / {want}**"


def table(results: list[ScenarioResult]) -> str:
    head = ("| scenario | faults injected | shards | samples committed / target | failed shards "
            "(expected / status) | validate | duplicates | missing | shards committed twice | bucket consistent "
            "| status == bucket | preemptions (status / faults) | retries (status / faults) | phase | time |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for r in results:
        verdict = "ok" if r.validate_ok else "FAIL: " + "; ".join(r.validate_problems)[:200]
        status = "yes" if r.status_matches else "NO: " + r.status_detail
        if r.error:
            status = "ERROR: " + r.error.splitlines()[0][:200]
        twice = ", ".join(f"{k.rsplit('/', 1)[-1]} x{v}" for k, v in r.double_commits.items()) or "none"
        consistent = "yes" if not r.truth_problems else "NO: " + "; ".join(r.truth_problems)[:200]
        rows.append(
            f"| {r.name} | {_faults(r)} | {r.shards} | {r.committed_samples} / {r.samples}"
            f"{f' ({r.quarantined} quarantined)' if r.quarantined else ''} | "
            f"{r.expected_failed_shards or '-'} / {r.reported_failed_shards or '-'} | {verdict} | {r.duplicates} | "
            f"{r.missing} | {twice} | {consistent} | {status} | "
            f"{_counter(r.preemptions_status, r.preemptions_expected)} | "
            f"{_counter(r.retries_status, r.retries_expected)} | {r.phase} | {r.seconds:.0f} s |")
    ok = sum(r.ok for r in results)
    return (f"{ok}/{len(results)} scenarios passed all checks (run of {run_date(results)}, tabled by "
            f"`scripts/reliability_report.py`).\n\n{head}\n" + "\n".join(rows) + "\n")


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    if BEGIN not in doc or END not in doc:
        doc += f"\n{BEGIN}\n{END}\n"
    before, rest = doc.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    DOC.write_text(f"{before}{BEGIN}\n{text}{END}{after}")


async def run(names: list[str] | None, keep: Path | None) -> list[ScenarioResult]:
    results = []
    for sc in [*SCENARIOS, racing_writers()]:  # racing writers: N rounds of two commits of one shard
        if names and sc.name not in names:
            continue
        base = keep or Path(tempfile.mkdtemp(prefix="reliability-"))
        print(f"running {sc.name}: {sc.title} ...", flush=True)
        r = await sc.run(base / sc.name)
        print(f"  {'ok' if r.ok else 'FAILED'} in {r.seconds:.0f} s: faults {r.faults}; {r.status_detail}; "
              f"{r.counters_detail}; {r.commits} shard commits, twice: {r.double_commits or 'none'}; "
              f"bucket problems: {r.truth_problems or 'none'} {r.error[:300]}", flush=True)
        results.append(r)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", help="Run only these scenarios (names as in the table).")
    p.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    p.add_argument("--keep", type=Path, help="Keep each scenario's logs and world dump under this folder.")
    p.add_argument("--no-doc", action="store_true", help="Print the table, do not touch docs/reliability.md.")
    p.add_argument("--from-json", type=Path, help="Do not run: render the table from a --json file of a past run.")
    args = p.parse_args()
    if args.from_json:
        fields = set(ScenarioResult.__dataclass_fields__)
        results = [ScenarioResult(**{k: v for k, v in d.items() if k in fields})
                   for d in json.loads(args.from_json.read_text())]
    else:
        results = asyncio.run(run(args.only, args.keep))
    text = table(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in results], indent=1))
    if not args.no_doc:
        write_doc(text)
        print(f"wrote {DOC}")
    sys.exit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
