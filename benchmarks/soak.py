"""Soak: every catalog case, N times per backend; how many traces differ from the first?

The conductor promises that the same scenario and permutation give the same trace. Each
round plays every case of the catalog at each of its levels (SQLite: its one level), each
on a fresh run database, and compares the whole trace text (events, verdict, final rows,
notes, replay line; no timings) with the first round's. It prints the count of runs and
of differing traces, and the first lines that differ. It asserts nothing.

    python benchmarks/soak.py [--rounds 20] [--db embedded,sqlite]
"""

from __future__ import annotations

import argparse
import difflib
import time

from lab.runner import Run
from lab.scenarios import SCENARIOS


def cases(db: str):
    for scenario in SCENARIOS.values():
        for variant in scenario.variants:
            levels = variant.isolations if db == "embedded" else variant.isolations[:1]
            for level in levels:
                yield scenario, variant.name, level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--db", default="embedded,sqlite")
    args = parser.parse_args()
    first: dict[tuple, str] = {}
    runs = differ = 0
    started = time.perf_counter()
    for db in args.db.split(","):
        db_runs = db_differ = 0
        for round_ in range(args.rounds):
            for scenario, case, level in cases(db):
                key = (db, scenario.name, case, level)
                text = Run(scenario, case, isolation=level, db=db).play().text()
                db_runs += 1
                if key not in first:
                    first[key] = text
                elif text != first[key]:
                    db_differ += 1
                    diff = [line for line in difflib.unified_diff(
                        first[key].splitlines(), text.splitlines(), lineterm="", n=0)
                        if line[:1] in "+-" and not line.startswith(("+++", "---"))]
                    print(f"round {round_ + 1}: {' / '.join(key)} differs: {diff[:4]}")
        print(f"{db}: {db_runs} runs ({db_runs // args.rounds} per round),"
              f" {db_differ} traces differ from the first")
        runs, differ = runs + db_runs, differ + db_differ
    print(f"total: {runs} runs in {time.perf_counter() - started:.0f} s;"
          f" {differ} traces differ from the first")


if __name__ == "__main__":
    main()
