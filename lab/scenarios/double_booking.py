"""double-booking: what the database must enforce (frame 5.4).

Two coordinators each check that Resident Three is free on Monday morning, see that she
is, and book her. Only the unique (block, person) constraint stops the second booking;
the original app showed its raw 23505, the fix turns it into a clear domain error.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Assignment
from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import COMMIT, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, step
from ..seed import CLINIC, RESIDENTS, block_id
from ..services import assignments

RESIDENT_THREE = RESIDENTS[2]
MONDAY_AM = block_id(0, "AM")


def _is_free(s: Session) -> str:
    taken = s.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.block_id == MONDAY_AM, Assignment.person_id == RESIDENT_THREE))
    return "Resident Three is free on Monday AM" if not taken else "already booked"


def _book(book):
    return lambda s: book(s, MONDAY_AM, RESIDENT_THREE, CLINIC, "backup")


def _booking(book, who: str, waits: str = ""):
    x = who.lower()
    return [step(f"{x}_check", _is_free, f"{who}: checks that Resident Three is free"),
            step(f"{x}_book", _book(book), f"{who}: books her on Monday AM clinic" + waits,
                 sqlite=f"{who}: books her" + (": SQLite refuses, A holds the write lock"
                                               if waits else "")),
            step(f"{x}_commit", COMMIT, f"{who}: commits")]


def booked_once(result: RunResult) -> Verdict:
    """Invariant 1: at most one assignment per (person, block), and a clear answer."""
    count = result.tables["bookings"][0]["bookings"]
    if count > 1:
        return Verdict(Outcome.ANOMALY, f"Resident Three is booked {count} times on Monday AM")
    codes = result.errors()
    raw = {st: c for st, c in codes.items() if c not in ("double-booked", "swap-pending")}
    if raw:
        shown = ", ".join(f"{st}: {c}" for st, c in raw.items())
        if set(raw.values()) == {"23505"}:
            return Verdict(Outcome.ANOMALY, f"the constraint held, but the user saw a raw database"
                           f" error ({shown})")
        return Verdict(Outcome.ANOMALY, f"booked once, but the database refused B before the"
                       f" constraint was reached, with a raw error ({shown})")
    explained = ", ".join(f"{st} refused with {c}" for st, c in codes.items())
    return Verdict(Outcome.ABORTED, f"booked once; {explained}: the constraint caught"
                   " what the application's check missed")


BOOKINGS = {"bookings": f"""SELECT COUNT(*) AS bookings FROM assignment
                            WHERE block_id = {MONDAY_AM} AND person_id = {RESIDENT_THREE}"""}

SCENARIO = Scenario(
    name="double-booking",
    title="The unique constraint as the last line of defence",
    summary="Check-then-insert books a resident twice; the unique constraint catches it.",
    frame="5.4",
    setup=None,
    final_state=BOOKINGS,
    variants=(
        Variant("raw-error", "The constraint catches it; the user sees a raw 23505.",
                {"A": _booking(assignments.book_naive, "A"),
                 "B": _booking(assignments.book_naive, "B", "; waits on A's new key")},
                "a_check b_check a_book b_book a_commit b_commit", booked_once),
        Variant("domain-error", "The lab turns the 23505 into 'already booked'.",
                {"A": _booking(assignments.book, "A"),
                 "B": _booking(assignments.book, "B", "; waits on A's new key")},
                "a_check b_check a_book b_book a_commit b_commit", booked_once),
    ),
    matrix=(
        MatrixRow('double booking as a raw 500 (app)', 'raw-error', app=True),
    ),
    exercise=Prediction(
        "The domain-error fix under SERIALIZABLE on PostgreSQL: what does B, the second"
        " coordinator, get?",
        (Choice("a", "the clear 'already booked' (double-booked), as under READ COMMITTED",
                failed_with("double-booked"),
                "Under SERIALIZABLE, PostgreSQL sees that B checked for the very row A then"
                " inserted: it reports a serialization failure before the unique constraint"
                " is even reached, so the service's translation of 23505 never runs."),
         Choice("b", "a raw 40001: the user sees a serialization failure, not the clear"
                " message", failed_with("40001", "b_"),
                "B read 'Resident Three is free', A inserted the row B looked for, and A"
                " committed first. SERIALIZABLE turns that into 40001 at B's insert, before"
                " the unique index can answer 23505. An application on SERIALIZABLE must"
                " catch 40001 and retry; the retry's check then says 'already booked'."),
         Choice("c", "nothing: both bookings commit", lambda r: len(r.commit_order()) == 2,
                "The unique (block, person) constraint stops a second row at every level;"
                " the question is only which error B sees.")),
        play("double-booking", "domain-error", isolation="serializable")),
)
