"""duty-hours: a resident over the duty-hour limit (write skew on invariant 8, G2).

Resident One works clinic every weekday morning of the first week, Monday 6 to Friday
10 July: five days in a row, as seeded. At most six are allowed. Coordinator A books her
for Saturday morning (six in a row: allowed); coordinator B, at the same moment, for
Sunday morning (Saturday is free, so Sunday starts a new run: allowed). Both checks pass,
each inserts a different row, both commit: seven days in a row. READ COMMITTED and
REPEATABLE READ allow it; SERIALIZABLE aborts one with 40001.

The fix locks the resident's row first. Under READ COMMITTED B waits, then its check sees
A's Saturday and the rule refuses Sunday. Under REPEATABLE READ B waits just the same, but
its snapshot predates A's commit: the check passes and the skew is back. Under
SERIALIZABLE B waits and then fails with 40001. On SQLite the whole database is locked:
the naive B fails with SQLITE_BUSY, and the fixed B waits for BEGIN IMMEDIATE and is
refused, at every level.
"""

from __future__ import annotations

import datetime as dt

from ..exercises.kinds import Fix
from ..runner import (
    COMMIT,
    ISOLATION_LEVELS,
    MatrixRow,
    RunResult,
    Scenario,
    Variant,
    Verdict,
    judged,
    step,
)
from ..seed import INPATIENT, RESIDENTS, START, WEEKS, block_id
from ..services import duty_hours

RESIDENT = RESIDENTS[0]
SATURDAY, SUNDAY = block_id(5, "AM"), block_id(6, "AM")
LAST = START + dt.timedelta(days=7 * WEEKS - 1)
FINAL = {"Resident One": f"""SELECT CAST(b.date AS TEXT) AS day, b.time_of_day AS half,
                             r.abbreviation AS rotation
                             FROM assignment a JOIN block b ON b.id = a.block_id
                             JOIN rotation_template r ON r.id = a.rotation_template_id
                             WHERE a.person_id = {RESIDENT}
                             AND b.date BETWEEN '{START}' AND '{LAST}'
                             ORDER BY b.date, b.time_of_day"""}


def check(block: int):
    return lambda s: duty_hours.check_shift(s, RESIDENT, block)


def add(block: int):
    return lambda s: duty_hours.add_shift(s, RESIDENT, block, INPATIENT)


LOCK_NOTES = {  # (PostgreSQL, SQLite)
    "a": ("A: locks Resident One's row first (FOR UPDATE)",
          "A: BEGIN IMMEDIATE: takes the database's write lock"),
    "b": ("B: locks her row: blocks until A commits",
          "B: BEGIN IMMEDIATE: waits for A's database write lock"),
}


def _session(x: str, block: int, when: str, locked: bool):
    who, naive_b, fixed_b = x.upper(), x == "b" and not locked, x == "b" and locked
    note, lite = LOCK_NOTES[x]
    lock = [step(f"{x}_lock", lambda s: duty_hours.lock_person(s, RESIDENT), note, sqlite=lite)]
    return (lock if locked else []) + [
        step(f"{x}_check", check(block), "B: checks after the lock; under READ COMMITTED it"
             " sees A's Saturday and the rule refuses Sunday" if fixed_b
             else f"{who}: checks her duty hours with {when} added"),
        step(f"{x}_add", add(block),
             f"{who}: books {when} morning" + (": not A's row, so no wait" if naive_b else ""),
             sqlite="B: books Sunday; A holds SQLite's write lock: 'database is locked'"
             if naive_b else ""),
        step(f"{x}_commit", COMMIT, f"{who}: commits"),
    ]


def within_duty_hours(result: RunResult) -> Verdict:
    """Invariant 8: at most 320 h (53 half-days) in any 28 days, at most 6 days in a row."""
    shifts = [(dt.date.fromisoformat(r["day"]), r["half"]) for r in result.tables["Resident One"]]
    broken = duty_hours.broken_rules(shifts)
    run = duty_hours.longest_run(d for d, _ in shifts)[0]
    return judged(result, broken and "write skew: each check saw room for one more day;"
                  f" together Resident One works {'; '.join(broken)}",
                  f"Resident One: at most {run} days in a row,"
                  f" {duty_hours.busiest_window(shifts)} h in 28 days")


def _sessions(locked: bool):
    return {"A": _session("a", SATURDAY, "Saturday", locked),
            "B": _session("b", SUNDAY, "Sunday", locked)}


CHECK_THEN_ADD = Variant(
    name="check-then-add", sessions=_sessions(False), invariant=within_duty_hours,
    summary="Check, then add: RC and RR allow write skew, SERIALIZABLE aborts one.",
    permutation="a_check b_check a_add b_add a_commit b_commit", isolations=ISOLATION_LEVELS)

LOCK_PERSON_ROW = Variant(
    name="lock-person-row", sessions=_sessions(True), invariant=within_duty_hours,
    summary="Lock the resident's row first: B waits, then the rule refuses Sunday"
            " (READ COMMITTED).",
    permutation="a_lock b_lock a_check a_add a_commit b_check b_add b_commit",
    isolations=ISOLATION_LEVELS)

def _with_your_booking(book_shift):
    """A books Saturday, B Sunday, each through the learner's book_shift."""
    def session(x: str, block: int, when: str):
        return [step(f"{x}_book", lambda s: book_shift(s, RESIDENT, block),
                     f"{x.upper()}: your book_shift, for {when}"),
                step(f"{x}_commit", COMMIT, f"{x.upper()}: commits")]

    return Variant("exercise", "Your book_shift for both coordinators.",
                   {"A": session("a", SATURDAY, "Saturday"), "B": session("b", SUNDAY, "Sunday")},
                   "a_book b_book a_commit b_commit", within_duty_hours)


SCENARIO = Scenario(
    name="duty-hours",
    title="A resident over the duty-hour limit",
    summary="Two coordinators each add a weekend day for one resident: seven days in a row.",
    frame="II",
    setup=None,  # the seed already gives Resident One five weekday mornings in a row
    final_state=FINAL,
    variants=(CHECK_THEN_ADD, LOCK_PERSON_ROW),
    matrix=(
        MatrixRow("duty hours over the limit (G2)", "check-then-add"),
        MatrixRow("fix: lock the resident", "lock-person-row", fix=True),
    ),
    exercise=Fix(
        function="book_shift",
        task="book_shift(session, person_id, block_id) books a resident onto a morning"
             " inpatient shift if the duty-hour rule allows it, and refuses with"
             " DutyHoursError otherwise. Two coordinators booking at once must never take"
             " her past six days in a row, under any level, on PostgreSQL or SQLite.",
        case=_with_your_booking),
)
