"""Editing an assignment without losing anyone's change (frame 5.1).

Two ways to refuse a stale save, both answering what an HTTP API would (409 Conflict):

* ``save_edit``: the ORM with ``version_id_col`` (``VersionedAssignment``);
* ``save_edit_cas``: compare-and-set, ``UPDATE ... WHERE id = :id AND version = :v``,
  where a rowcount of 0 means someone else saved first.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..errors import ConflictError, DoubleBookingError
from .writes import begin_write
from ..models import Assignment, VersionedAssignment


def current_version(session: Session, assignment_id: int) -> int | None:
    return session.scalar(select(Assignment.version).where(Assignment.id == assignment_id))


def load_for_edit(session: Session, assignment_id: int) -> VersionedAssignment:
    return session.get_one(VersionedAssignment, assignment_id)


def save_edit(session: Session, assignment: VersionedAssignment, **changes: object) -> int:
    """Apply `changes` to a loaded assignment; ConflictError if its version is stale."""
    loaded = assignment.version
    for field, value in changes.items():
        setattr(assignment, field, value)
    assignment.updated_at = func.current_timestamp()
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise ConflictError(f"assignment #{assignment.id}", loaded,
                            current_version(session, assignment.id)) from None
    return assignment.version


def save_edit_cas(session: Session, assignment_id: int, loaded_version: int,
                  **changes: object) -> int:
    """Compare-and-set: write only if the version is still `loaded_version`."""
    result = session.execute(
        update(Assignment)
        .where(Assignment.id == assignment_id, Assignment.version == loaded_version)
        .values(**changes, version=Assignment.version + 1,
                updated_at=func.current_timestamp())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        session.rollback()
        raise ConflictError(f"assignment #{assignment_id}", loaded_version,
                            current_version(session, assignment_id))
    return loaded_version + 1


def book_naive(session: Session, block_id: int, person_id: int, template_id: int,
               role: str) -> str:
    """The original booking: insert and let any constraint error escape as it is."""
    session.add(Assignment(block_id=block_id, person_id=person_id,
                           rotation_template_id=template_id, role=role, notes="",
                           source="manual", updated_at=func.current_timestamp()))
    session.flush()
    return "booked"


def book(session: Session, block_id: int, person_id: int, template_id: int, role: str) -> str:
    """Book a person; the unique (block, person) constraint's 23505 becomes a domain error."""
    begin_write(session)
    try:
        with session.begin_nested():
            book_naive(session, block_id, person_id, template_id, role)
    except IntegrityError as exc:
        if "uq_assignment_block_person" not in str(exc.orig) and \
                "assignment.block_id" not in str(exc.orig):
            raise
        raise DoubleBookingError(f"person #{person_id} is already booked in block"
                                 f" #{block_id}") from None
    return "booked"
