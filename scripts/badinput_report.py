"""Run the hostile-input corpus (tests/badinput/corpus.py) and print tracebacks and hangs per command.

    .venv/bin/python scripts/badinput_report.py [--only PREFIX] [--failures] [--json FILE]

Each case runs the real ``synthctl`` in a subprocess (timeout, address-space limit, peak memory
measured). The table counts, per command: cases, tracebacks, hangs, wrong exit codes, messages
that do not name the file or field, too much memory, side effects (a write into the dataset it
reads or into the working directory). ``--failures`` also lists every failing case and why.
Exit 0 when no case fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "badinput"))

import corpus

KINDS = ("traceback", "hang", "exit", "message", "memory", "side effect")


def _kind(problem: str) -> str:
    if problem in ("traceback", "hang"):
        return problem
    if problem.startswith("exit"):
        return "exit"
    if problem.startswith(("message", "no message")) or "characters of output" in problem:
        return "message"
    if "peak memory" in problem:
        return "memory"
    return "side effect"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="Run only the cases whose id starts with this.")
    ap.add_argument("--failures", action="store_true", help="List every failing case.")
    ap.add_argument("--json", default=None, help="Write the outcomes as JSON here.")
    args = ap.parse_args()
    cases = [c for c in corpus.all_cases() if c.id.startswith(args.only)]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="badinput-") as tmp, corpus.black_hole() as port:
        base = corpus.build_base(Path(tmp) / "base")
        for n, case in enumerate(cases):
            work = Path(tmp) / f"case{n}"
            outcome, problems = corpus.run_and_judge(case, work, base=base, port=port)
            shutil.rmtree(work, ignore_errors=True)
            c = counts[case.command]
            c["cases"] += 1
            for kind in {_kind(p) for p in problems}:
                c[kind] += 1
            c["failing"] += bool(problems)
            rows.append({"id": case.id, "exit": outcome.code, "seconds": round(outcome.seconds, 2),
                         "rssMB": round(outcome.rss_mb), "problems": problems,
                         "last": outcome.out.strip().splitlines()[-1][:200] if outcome.out.strip() else ""})
    head = f"{'command':<18} {'cases':>5} {'traceback':>9} {'hang':>5} {'exit':>5} {'message':>7} {'memory':>6} " \
           f"{'side effect':>11} {'failing':>7}"
    print(head)
    total: dict[str, int] = defaultdict(int)
    for command in sorted(counts):
        c = counts[command]
        for k, v in c.items():
            total[k] += v
        print(f"{command:<18} {c['cases']:>5} " + " ".join(f"{c[k]:>{max(len(k), 4)}}" for k in KINDS)
              + f" {c['failing']:>7}")
    print(f"{'total':<18} {total['cases']:>5} " + " ".join(f"{total[k]:>{max(len(k), 4)}}" for k in KINDS)
          + f" {total['failing']:>7}")
    print(f"({len(cases)} cases in {time.perf_counter() - t0:.0f}s; slowest "
          f"{max((r['seconds'] for r in rows), default=0):.1f}s, peak memory "
          f"{max((r['rssMB'] for r in rows), default=0)} MB)")
    if args.failures:
        for r in rows:
            if r["problems"]:
                print(f"  {r['id']}: {'; '.join(r['problems'])} | exit {r['exit']} | {r['last']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if total["failing"] else 0


if __name__ == "__main__":
    sys.exit(main())
