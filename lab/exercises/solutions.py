"""Reference solutions to the "write the fix" exercises. Read them after your attempt.

Each passes ``exercises.check`` under every isolation level on PostgreSQL and SQLite. Two
ideas recur: make the conflict a *write* on one row that every competing transaction
must also write (a lock alone does not refresh a REPEATABLE READ snapshot), and on SQLite
take the write lock up front (``begin_write``), because SQLite drops ``FOR UPDATE``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..errors import ConflictError
from ..models import Assignment, CallAssignment, CallNight, Person, SwapRequest
from ..seed import INPATIENT
from ..services import coverage, duty_hours
from ..services.swaps import lock_assignments
from ..services.writes import begin_write

FORM_FIELDS = ("block_id", "person_id", "rotation_template_id", "role", "notes")


def save(session: Session, form: dict, **changes: object) -> str:
    """concurrent-edit: compare-and-set on the version the user loaded; 0 rows is a 409."""
    values = {f: changes.get(f, form[f]) for f in FORM_FIELDS}
    saved = session.execute(
        update(Assignment)
        .where(Assignment.id == form["id"], Assignment.version == form["version"])
        .values(**values, version=form["version"] + 1)
        .execution_options(synchronize_session=False))
    if saved.rowcount == 0:
        raise ConflictError(f"assignment #{form['id']}", form["version"], None)
    return f"saved as version {form['version'] + 1}"


def load_form(session: Session, assignment_id: int) -> dict:
    """explicit-locking: lock the row while reading it (SQLite: the database's write lock)."""
    begin_write(session)
    row = session.scalars(select(Assignment).where(Assignment.id == assignment_id)
                          .with_for_update()).one()
    return {f: getattr(row, f) for f in FORM_FIELDS}


def execute_swap(session: Session, request_id: int) -> str:
    """swap-race: lock both shifts in id order, re-check their owners, reject the loser.

    Under REPEATABLE READ and SERIALIZABLE the lock itself fails with 40001 once the
    winner commits; the whole transaction is then run again, with a fresh snapshot.
    """
    try:
        return _swap_once(session, request_id)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "40001":
            raise
        session.rollback()
        return _swap_once(session, request_id)


def _swap_once(session: Session, request_id: int) -> str:
    begin_write(session)
    req = session.get_one(SwapRequest, request_id)
    moves = [(req.source_assignment_id, req.source_faculty_id, req.target_faculty_id),
             (req.target_assignment_id, req.target_faculty_id, req.source_faculty_id)]
    ids = lock_assignments(session, sorted(a for a, _, _ in moves))
    owners = dict(session.execute(select(Assignment.id, Assignment.person_id)
                                  .where(Assignment.id.in_(ids))).all())
    if any(owners[a] != owner for a, owner, _ in moves):
        req.status, req.reason = "rejected", "assignment already swapped"
        session.flush()
        return f"swap #{request_id} rejected: assignment already swapped"
    for assignment_id, _, new_person in moves:
        session.execute(update(Assignment).where(Assignment.id == assignment_id)
                        .values(person_id=new_person, source="manual")
                        .execution_options(synchronize_session=False))
    req.status = "executed"
    session.flush()
    return f"swap #{request_id} executed"


def lock_order(shifts: list[int]) -> list[int]:
    """swap-deadlock: everyone locks in one global order, so no cycle can form."""
    return sorted(shifts)


def leave_call(session: Session, night: dt.date, person_id: int) -> str:
    """on-call-write-skew: write the night's row first, then count, then leave.

    The UPDATE makes both doctors write one row: under READ COMMITTED the second waits
    and then counts afresh; under REPEATABLE READ and SERIALIZABLE it fails with 40001.
    """
    begin_write(session)
    session.execute(update(CallNight).where(CallNight.date == night)
                    .values(min_faculty=CallNight.min_faculty))
    others = coverage.others_on_call(session, night, person_id)
    if others < 1:
        raise coverage.CoverageError(f"person #{person_id} is the last one on call on {night}")
    session.execute(delete(CallAssignment).where(CallAssignment.date == night,
                                                 CallAssignment.person_id == person_id))
    return f"person #{person_id} is off call on {night}"


def book_shift(session: Session, person_id: int, block_id: int) -> str:
    """duty-hours: write the resident's own row first, then check, then book."""
    begin_write(session)
    session.execute(update(Person).where(Person.id == person_id).values(name=Person.name))
    duty_hours.check_shift(session, person_id, block_id)
    return duty_hours.add_shift(session, person_id, block_id, INPATIENT)
