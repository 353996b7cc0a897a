"""The invariants a contention run must leave true, read from the final rows.

* lost edits (invariant 7): a committed edit's mark is gone from the notes;
* swaps that do not chain (invariant 5): the executed swaps of a shift must form one
  path from its seeded owner to its owner now, each moving it away from whoever held
  it then. A path exists only if every person hands the shift on as often as they
  receive it (but its two ends); each unit of imbalance is a swap that moved the shift
  away from someone who no longer held it. (Balance is necessary, not sufficient: a
  count that errs low, never high.)
* double bookings (invariant 1): one person twice in one block (the unique constraint
  makes it 0 for every strategy; counted so that a weaker schema would show).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Connection, text

from ..seed import week_one_plan
from ..workload.invariants import FINAL

JOURNAL = ("CREATE TABLE IF NOT EXISTS contention_journal (id SERIAL PRIMARY KEY,"
           " assignment_id INTEGER NOT NULL, mark TEXT NOT NULL)")
LOST_EDITS = """SELECT count(*) FROM contention_journal j JOIN assignment a
                ON a.id = j.assignment_id WHERE position(j.mark IN a.notes) = 0"""
EXECUTED = """SELECT source_assignment_id, source_faculty_id, target_faculty_id
              FROM swap_request WHERE status = 'executed'"""


def unchained(seeded: dict[int, int], now: dict[int, int],
              moves: list[tuple[int, int, int]]) -> int:
    """Swaps that moved a shift away from someone who did not hold it (see above)."""
    net: Counter[tuple[int, int]] = Counter()
    for shift, giver, taker in moves:
        net[shift, giver] += 1
        net[shift, taker] -= 1
    for shift, owner in seeded.items():
        net[shift, owner] -= 1
    for shift, owner in now.items():
        net[shift, owner] += 1
    return sum(abs(v) for v in net.values()) // 2


def violations(conn: Connection) -> dict[str, int]:
    seeded = {i: person for i, (_, person, _, _) in enumerate(week_one_plan(), 1)}
    now = dict(conn.execute(text("SELECT id, person_id FROM assignment")).all())
    moves = [tuple(r) for r in conn.execute(text(EXECUTED))]
    return {"lost edits": conn.execute(text(LOST_EDITS)).scalar_one(),
            "unchained swaps": unchained(seeded, {k: now[k] for k in seeded}, moves),
            "double bookings": len(conn.execute(text(FINAL["double bookings"])).all())}
