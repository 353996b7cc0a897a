"""Benchmark: how fast the conductor sees a block, and what it costs per step.

Prints two figures (targets in brackets); it is not a test and asserts nothing.

1. Block detection: median time from launching a step that will block to the
   conductor recording it as waiting [target <= 2 ms on the embedded PostgreSQL].
2. Conductor overhead per step: time per UPDATE step played through the conductor,
   minus the time of the same statements run directly with psycopg [target <= 0.5 ms].

    python benchmarks/conductor.py [--rounds N] [--db URL]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from lab.db import resolve
from lab.runner import COMMIT, Run, Scenario, Variant, Verdict, step
from lab.runner.trace import Event

UPDATE = "UPDATE person SET name = name WHERE id = 1"


def _scenario(sessions: dict, permutation: str) -> Scenario:
    return Scenario("bench", "bench", "bench", "-", None, "SELECT 1 AS one",
                    (Variant("only", "", sessions, permutation, lambda r: Verdict("fine", "")),))


def detection(rounds: int, db: str | None) -> list[float]:
    """Milliseconds from B's launch to the conductor's "waiting" record, per round."""
    n = rounds
    sc = _scenario({"A": [s for i in range(n) for s in (step(f"a{i}", UPDATE),
                                                         step(f"ac{i}", COMMIT))],
                    "B": [s for i in range(n) for s in (step(f"b{i}", UPDATE),
                                                         step(f"bc{i}", COMMIT))]},
                   " ".join(f"a{i} b{i} ac{i} bc{i}" for i in range(n)))
    run = Run(sc, db=db)
    samples = []
    for i in range(n):
        run.step(f"a{i}")
        t0 = time.perf_counter()
        events: list[Event] = run.step(f"b{i}")
        samples.append((time.perf_counter() - t0) * 1000)
        assert any(e.kind == "wait" for e in events), "B did not block"
        run.step(f"ac{i}")
        run.step(f"bc{i}")
    run.finish()
    return samples


def overhead(rounds: int, db: str | None, track_locks: bool) -> tuple[float, float]:
    """(ms per step through the conductor, ms per statement directly with psycopg)."""
    names = [f"u{i}" for i in range(rounds)]
    sc = _scenario({"A": [step(n, UPDATE) for n in names] + [step("c", COMMIT)]},
                   " ".join(names) + " c")
    run = Run(sc, db=db, track_locks=track_locks)
    t0 = time.perf_counter()
    for n in names:
        run.step(n)
    conducted = (time.perf_counter() - t0) * 1000 / rounds
    url = run.db.url.render_as_string(hide_password=False).replace("+psycopg", "")
    run.step("c")
    with psycopg.connect(url) as conn:
        conn.execute(UPDATE)  # warm up, as the conductor's session is
        t0 = time.perf_counter()
        for _ in names:
            conn.execute(UPDATE)
        direct = (time.perf_counter() - t0) * 1000 / rounds
        conn.rollback()
    run.finish()
    return conducted, direct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--db", default=None, help="a postgresql:// URL (default: embedded)")
    args = parser.parse_args()
    if resolve(args.db).kind == "sqlite":
        parser.error("this benchmark measures PostgreSQL's block detection")
    samples = detection(args.rounds, args.db)
    q = statistics.quantiles(samples, n=20)
    print(f"block detection: median {statistics.median(samples):.3f} ms"
          f" (p5 {q[0]:.3f}, p95 {q[-1]:.3f}, n={len(samples)}) [target <= 2 ms]")
    for track_locks, label in ((True, "with lock marks (default)"),
                               (False, "without lock marks")):
        conducted, direct = overhead(args.rounds * 5, args.db, track_locks)
        print(f"conductor overhead per step, {label}: {conducted - direct:.3f} ms"
              f" ({conducted:.3f} ms through the conductor vs {direct:.3f} ms direct psycopg,"
              f" n={args.rounds * 5}) [target <= 0.5 ms]")


if __name__ == "__main__":
    main()
