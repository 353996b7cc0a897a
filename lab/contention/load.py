"""N coordinator threads running one strategy's mix for a few seconds, and what it cost.

Each thread has its own connection and loops: pick an operation (an edit 70% of the
time, else a swap) and an assignment at random, run it in a transaction, and retry
the whole transaction, reads included, on a serialization failure, a deadlock or a 409.
A scheduling rule saying no (a swap that lost the race, `DomainError`) is a decision,
not a retry. Threads stop at a shared deadline or on Ctrl-C; every one is joined and its
connection closed before the point's invariants are read.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..db import RunDatabase, open_run_database, resolve
from ..errors import ConflictError, DomainError
from .pgbench import Pgbench
from .invariants import JOURNAL, violations
from .strategies import EDITED, STRATEGIES, SWAPPED, Strategy

EDIT_SHARE = 0.7
MAX_ATTEMPTS = 50  # a transaction retried this often counts as given up
RETRIED = {"40001", "40P01"}  # serialization failure, deadlock
JOIN_SECONDS = 30


@dataclass
class Point:
    """One strategy at one N: what the coordinators did, and what the rows say after."""

    strategy: str
    clients: int
    seconds: float
    ops: int = 0
    retries: int = 0
    rejected: int = 0
    given_up: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, per finished operation
    violations: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    pgbench_tps: float | None = None

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds

    def latency_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    @property
    def retry_rate(self) -> float:
        """Retries per finished operation: how often a user would have had to try again."""
        return self.retries / self.ops if self.ops else 0.0

    @property
    def broken(self) -> int:
        return sum(self.violations.values())


def _attempt(strategy: Strategy, conn, rng: random.Random, mark: str) -> str:
    """One try of one operation: "done", "rejected" (a rule said no, the user's answer)
    or "retry" (the database or a 409 asks for the whole transaction again)."""
    with Session(bind=conn) as s:
        try:
            if rng.random() < EDIT_SHARE:
                strategy.edit(s, rng.choice(EDITED), mark)
                status = "done"
            else:
                status = "rejected" if strategy.swap(s, rng.choice(SWAPPED), rng) == "rejected" \
                    else "done"
            s.commit()
            return status
        except ConflictError:
            s.rollback()
            return "retry"
        except DomainError:
            s.rollback()
            return "rejected"
        except DBAPIError as exc:
            s.rollback()
            if getattr(exc.orig, "sqlstate", None) in RETRIED:
                return "retry"
            raise


def _coordinator(db: RunDatabase, strategy: Strategy, index: int, deadline: float,
                 stop: threading.Event, point: Point, lock: threading.Lock) -> None:
    rng = random.Random(index)
    mine = Point(strategy.name, point.clients, point.seconds)
    try:
        with db.open_connection(strategy.isolation) as conn:
            n = 0
            while not stop.is_set() and time.perf_counter() < deadline:
                n += 1
                started = time.perf_counter()
                for _ in range(MAX_ATTEMPTS):
                    status = _attempt(strategy, conn, rng, f"+{index}.{n};")
                    if status != "retry":
                        mine.rejected += status == "rejected"
                        break
                    mine.retries += 1
                else:
                    mine.given_up += 1
                    continue
                mine.ops += 1
                mine.latencies.append(time.perf_counter() - started)
    except Exception as exc:  # reported with the point; the other threads go on
        mine.errors.append(f"coordinator {index}: {type(exc).__name__}: {exc}".splitlines()[0])
    with lock:
        for name in ("ops", "retries", "rejected", "given_up"):
            setattr(point, name, getattr(point, name) + getattr(mine, name))
        point.latencies += mine.latencies
        point.errors += mine.errors


def measure(db: RunDatabase, strategy: Strategy, clients: int, seconds: float) -> Point:
    """Run the mix from the seeded rows; every thread joined, then the invariants read."""
    db.reset()
    point, stop, lock = Point(strategy.name, clients, seconds), threading.Event(), threading.Lock()
    deadline = time.perf_counter() + seconds
    threads = [threading.Thread(target=_coordinator, name=f"coordinator-{i}", daemon=True,
                                args=(db, strategy, i, deadline, stop, point, lock))
               for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    finally:  # Ctrl-C: tell every thread to stop after its operation, and wait for it
        stop.set()
        for t in threads:
            t.join(JOIN_SECONDS)
    point.seconds = time.perf_counter() - started
    with db.engine.connect() as conn:
        point.violations = violations(conn)
    return point


def study(strategies: Iterable[str] = tuple(STRATEGIES), clients: Iterable[int] = (1, 2, 4, 8, 16),
          seconds: float = 3.0, *, anchor: bool = True) -> Iterator[Point]:
    """Every strategy at every N on one run database, with pgbench's tps at each N."""
    db = open_run_database(resolve("embedded"))
    try:
        with db.engine.begin() as conn:
            conn.execute(text(JOURNAL))
        db.snapshot()
        with contextlib.ExitStack() as stack:
            bench = stack.enter_context(Pgbench(db)) if anchor else None
            for n in clients:
                tps = bench.tps(n, seconds) if bench else None
                for name in strategies:
                    point = measure(db, STRATEGIES[name], n, seconds)
                    point.pgbench_tps = tps
                    yield point
    finally:
        db.close()
