"""Benchmark: the explorer's throughput, in complete interleavings per second.

Each interleaving is a whole run: reset the data to the seed, run the scenario's setup,
play every step with detection and settling, end the transactions, read the final state
and judge it. The explorer shares one database per backend (creating one takes about
0.3 s) and starts a stage per case and level (a connection per session); both are
counted in the totals. Target: >= 50 interleavings/s on the embedded PostgreSQL on a
2-core machine. Each backend is measured twice, with the serial check (every serial
order of the committed transactions replayed once per case and level, each interleaving
compared against them) and without it; the check's target is at least half the rate
without it.

Then the parallel explorer (lab.parallel): the whole set, every case at every level on
both backends, once in one process and once spread over worker processes, with the
serial check, back to back; the parallel rate is printed as a ratio to the single one
[target >= 250 interleavings/s on 2 cores], and the two results must be identical.
It asserts nothing else.

    python benchmarks/explorer.py [--workers N]
"""

from __future__ import annotations

import argparse
import os
import time

from lab.db import resolve
from lab.explorer import explorations, explore
from lab.runner import ISOLATION_LEVELS, Run
from lab.runner.stage import shared_database
from lab.scenarios import get

CASES = (("on-call-write-skew", "check-then-act"),          # 2 x 3 steps, nobody waits
         ("concurrent-edit", "whole-object-save"),          # 2 x 3, waits prune 6 orderings
         ("on-call-write-skew", "lock-coverage-row"),       # 2 x 4, waits prune most
         ("concurrent-edit", "version-check"),              # 3 + 6 steps, 84 orderings
         ("read-during-write", "report"))                   # 3 + 4 steps, 35 orderings


def baseline(shared) -> float:
    """Median BEGIN/UPDATE/COMMIT on this machine now (the field notes measured 0.23 ms):
    the same box can be half as fast an hour later, so read the rates against it."""
    raw = shared.engine.raw_connection()
    try:
        conn = raw.driver_connection
        conn.autocommit = True
        took = []
        for _ in range(200):
            start = time.perf_counter()
            conn.execute("BEGIN; UPDATE assignment SET notes = notes WHERE id = 1; COMMIT")
            took.append(time.perf_counter() - start)
        return sorted(took)[100] * 1000
    finally:
        raw.close()


def backend(db: str) -> None:
    """Each case and level explored twice, without and with the serial check, back to back
    (a shared machine's speed drifts; side by side, the two rates see the same drift)."""
    target = resolve(db)
    levels = ISOLATION_LEVELS if db == "embedded" else ISOLATION_LEVELS[:1]
    runs, took = {False: 0, True: 0}, {False: 0.0, True: 0.0}
    start = time.perf_counter()
    with shared_database(target) as shared:
        print(f"{db}: shared database ready in {time.perf_counter() - start:.2f} s")
        if db == "embedded":
            print(f"{db}: baseline BEGIN/UPDATE/COMMIT {baseline(shared):.2f} ms (median)")
        for name, case in CASES:
            for level in levels:
                rates = []
                for check in (False, True):
                    t0 = time.perf_counter()
                    found = explore(get(name), case, level, target, database=shared,
                                    serial_check=check)
                    took[check] += time.perf_counter() - t0
                    runs[check] += len(found.interleavings)
                    rates.append(len(found.interleavings) / (time.perf_counter() - t0))
                print(f"{db:<9} {name:<20} {case:<18} {level:<16}"
                      f" {len(found.interleavings):4d} interleavings  without the check"
                      f" {rates[0]:6.1f}/s, with it {rates[1]:6.1f}/s"
                      f" ({len(found.not_serializable)} not serializable)")
    off, on = (runs[c] / took[c] for c in (False, True))
    print(f"{db}: {runs[False]} interleavings each way: without the serial check {off:.1f}"
          f" interleavings/s, with it {on:.1f}/s = {on / off:.0%} of the rate without it"
          "  [target >= 50%]" + ("; [target >= 50/s without it]" if db == "embedded" else "")
          + " (stage starts included; the shared database and the baseline not)\n")


def parallel(workers: int) -> None:
    """The whole set in one process, then over `workers` processes: rates and their ratio."""
    cases = [(get(name), case) for name, case in CASES]
    chosen = [resolve("embedded"), resolve("sqlite")]
    rates, results = [], []
    for n in (1, workers):
        start = time.perf_counter()
        found = list(explorations(cases, chosen, ISOLATION_LEVELS, workers=n))
        took = time.perf_counter() - start
        played = sum(len(e.interleavings) for e in found)
        feasible = sum(e.feasible for e in found)
        rates.append(played / took)
        results.append([[(i.permutation, i.outcome, i.detail, i.serializable, i.weight)
                         for i in e.interleavings] for e in found])
        print(f"all levels, both backends, {n} process{'es' if n > 1 else ''}: {played}"
              f" interleavings in {took:.2f} s = {rates[-1]:.1f}/s (worker start included);"
              f" they stand for {feasible} feasible orderings (the exact reductions):"
              f" {feasible / took:.1f} orderings/s covered")
    same = "identical" if results[0] == results[1] else "DIFFERENT (a bug)"
    print(f"parallel / single = {rates[1] / rates[0]:.2f}x with {workers} workers on"
          f" {os.cpu_count()} cores; {rates[1]:.1f}/s [target >= 250/s]; results {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    for db in ("embedded", "sqlite"):  # warm up: start the server, build the seeded bases
        Run(get("explicit-locking"), db=db).play()
    for db in ("embedded", "sqlite"):
        backend(db)
    parallel(args.workers)


if __name__ == "__main__":
    main()
