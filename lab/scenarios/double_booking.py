"""double-booking and pending-swap: what the database must enforce (frame 5.4).

Two coordinators each check that Resident Three is free on Monday morning, see that she
is, and book her. Only the unique (block, person) constraint stops the second booking;
the original app showed its raw 23505, the fix turns it into a clear domain error. A
partial unique index does the same for swap requests: one open request per assignment.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Assignment
from ..runner import COMMIT, RunResult, Scenario, Variant, Verdict, step
from ..seed import CLINIC, FACULTY, RESIDENTS, block_id
from ..services import assignments, swaps

RESIDENT_THREE = RESIDENTS[2]
MONDAY_AM = block_id(0, "AM")
_, BAKER, CHEN = FACULTY
ADAMS_AM = 3


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
        return Verdict("anomaly", f"Resident Three is booked {count} times on Monday AM")
    codes = result.errors()
    raw = {st: c for st, c in codes.items() if c not in ("double-booked", "swap-pending")}
    if raw:
        shown = ", ".join(f"{st}: {c}" for st, c in raw.items())
        if set(raw.values()) == {"23505"}:
            return Verdict("anomaly", f"the constraint held, but the user saw a raw database"
                           f" error ({shown})")
        return Verdict("anomaly", f"booked once, but the database refused B before the"
                       f" constraint was reached, with a raw error ({shown})")
    explained = ", ".join(f"{st} refused with {c}" for st, c in codes.items())
    return Verdict("prevented-by-abort", f"booked once; {explained}: the constraint caught"
                   " what the application's check missed")


def one_open_swap(result: RunResult) -> Verdict:
    """Invariant 5: at most one open swap request per assignment, refused clearly."""
    open_ = result.tables["open requests"][0]["open_requests"]
    if open_ > 1:
        return Verdict("anomaly", f"{open_} open swap requests for assignment #3")
    codes = result.errors()
    if any(c != "swap-pending" for c in codes.values()):
        return Verdict("anomaly", f"a raw database error reached the user: {codes}")
    if codes:
        return Verdict("prevented-by-abort", "one open request; the second was refused:"
                       " 'already has a pending swap request'")
    return Verdict("fine", "one open request")


def _request(target: int):
    return lambda s: f"swap #{swaps.request_swap(s, ADAMS_AM, None, target).id} requested"


BOOKINGS = {"bookings": f"""SELECT COUNT(*) AS bookings FROM assignment
                            WHERE block_id = {MONDAY_AM} AND person_id = {RESIDENT_THREE}"""}

DOUBLE_BOOKING = Scenario(
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
)

PENDING_SWAP = Scenario(
    name="pending-swap",
    title="One open swap request per assignment",
    summary="Two swap requests for one shift at once; a partial unique index refuses one.",
    frame="5.4",
    setup=None,
    final_state={"open requests": """SELECT COUNT(*) AS open_requests FROM swap_request
                 WHERE source_assignment_id = 3 AND status IN ('pending', 'approved')"""},
    variants=(
        Variant("partial-unique-index", "Dr Adams asks twice (two tabs): the second request"
                " waits for the first, then is refused.",
                {"A": [step("a_request", _request(CHEN), "A: requests a swap of #3 to Dr Chen"),
                       step("a_commit", COMMIT, "A: commits")],
                 "B": [step("b_request", _request(BAKER), "B: requests a swap of #3 to Dr"
                            " Baker; waits on A's index entry, then is refused",
                            sqlite="B: requests; A holds SQLite's write lock"),
                       step("b_commit", COMMIT, "B: commits")]},
                "a_request b_request a_commit b_commit", one_open_swap),
    ),
)
