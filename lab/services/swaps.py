"""Swap requests and their execution (frames 5.2 and 5.4).

``execute_swap`` is the fix. It locks both assignments ``FOR UPDATE`` in id order, so two
executors can never deadlock. It then re-checks that each assignment still belongs to
the faculty member named in the request. A swap that lost the race ends ``rejected``
with the reason "assignment already swapped", recorded in the same transaction so the
caller's commit keeps it (raising would roll the rejection back with everything else).
``execute_swap_naive`` is the original: no lock, no re-check.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import DoubleBookingError, SwapPendingError
from .writes import begin_write
from ..models import Assignment, SwapRequest
from . import assignments, generation


def request_swap(session: Session, source_assignment_id: int,
                 target_assignment_id: int | None, target_faculty_id: int) -> SwapRequest:
    """File an approved request; refused if the source already has an open one."""
    begin_write(session)
    source = session.get_one(Assignment, source_assignment_id)
    req = SwapRequest(
        source_faculty_id=source.person_id, source_assignment_id=source_assignment_id,
        target_faculty_id=target_faculty_id, target_assignment_id=target_assignment_id,
        swap_type="one_to_one" if target_assignment_id else "absorb", status="approved",
        requested_at=func.current_timestamp(), approved_at=func.current_timestamp(),
    )
    try:
        with session.begin_nested():
            session.add(req)
            session.flush()
    except IntegrityError as exc:
        if "uq_swap_open_source" not in str(exc.orig) and "swap_request.source" not in str(exc.orig):
            raise
        raise SwapPendingError(f"assignment #{source_assignment_id} already has a pending"
                               " swap request; cancel it before asking again") from None
    return req


def _moves(req: SwapRequest) -> list[tuple[int, int, int]]:
    """(assignment id, the person it must still belong to, the person it goes to)."""
    moves = [(req.source_assignment_id, req.source_faculty_id, req.target_faculty_id)]
    if req.target_assignment_id is not None:
        moves.append((req.target_assignment_id, req.target_faculty_id, req.source_faculty_id))
    return moves


def _apply(session: Session, req: SwapRequest, explain: bool = True) -> None:
    for assignment_id, _owner, new_person in _moves(req):
        if not explain:  # the original: a unique violation surfaces as a raw 23505
            session.execute(update(Assignment).where(Assignment.id == assignment_id)
                            .values(person_id=new_person, source="manual",
                                    updated_at=func.current_timestamp())
                            .execution_options(synchronize_session=False))
            continue
        try:
            with session.begin_nested():
                session.execute(
                    update(Assignment).where(Assignment.id == assignment_id)
                    .values(person_id=new_person, source="manual",
                            updated_at=func.current_timestamp())
                    .execution_options(synchronize_session=False))
        except IntegrityError as exc:
            if "uq_assignment_block_person" not in str(exc.orig) and \
                    "assignment.block_id" not in str(exc.orig):
                raise
            raise DoubleBookingError(
                f"swap #{req.id} would book person #{new_person} twice in the block of"
                f" assignment #{assignment_id}") from None
    _executed(session, req)


def _executed(session: Session, req: SwapRequest) -> None:
    req.status, req.executed_at = "executed", func.current_timestamp()
    req.reason = ""
    session.flush()


def lock_order(ids: Iterable[int]) -> tuple[int, ...]:
    """The one order in which every transaction locks assignments, one at a time: by id.
    Two transactions can then never each hold a row the other waits for."""
    return tuple(sorted(ids))


def lock_assignments(session: Session, ids: list[int]) -> list[int]:
    """SELECT ... FOR UPDATE the rows in id order: two lockers can then never deadlock."""
    begin_write(session)
    return list(session.scalars(select(Assignment.id).where(Assignment.id.in_(ids))
                                .order_by(Assignment.id).with_for_update()))


def execute_swap_naive(session: Session, request_id: int) -> str:
    """The original executor: move the people, mark it executed. No lock, no re-check."""
    req = session.get_one(SwapRequest, request_id)
    _apply(session, req, explain=False)
    return f"swap #{request_id} executed"


def execute_swap(session: Session, request_id: int) -> str:
    """Lock, re-check, then move; queue it if a schedule generation holds the schedule."""
    begin_write(session)
    req = session.get_one(SwapRequest, request_id)
    if req.status != "approved":
        return f"swap #{request_id} is {req.status}; nothing to do"
    if not generation.swap_may_run(session):
        req.queued_at = func.current_timestamp()
        req.reason = "queued: a schedule generation is in progress"
        session.flush()
        return f"swap #{request_id} queued: a schedule generation is in progress"
    ids = [a for a, _, _ in _moves(req)]
    lock_assignments(session, ids)
    owners = dict(session.execute(select(Assignment.id, Assignment.person_id)
                                  .where(Assignment.id.in_(ids))).all())
    for assignment_id, owner, _ in _moves(req):
        if owners.get(assignment_id) != owner:
            req.status, req.reason = "rejected", f"assignment #{assignment_id} already swapped"
            session.flush()
            return f"swap #{request_id} rejected: {req.reason}"
    _apply(session, req)
    return f"swap #{request_id} executed"


def execute_swap_versioned(session: Session, request_id: int,
                           versions: dict[int, int]) -> str:
    """Optimistic: move each assignment only if it still has the version read when the
    request was filed (`versions`: assignment id -> version); ConflictError (409) if
    anyone wrote it since, the caller re-reads and tries again. No lock is held."""
    req = session.get_one(SwapRequest, request_id)
    for assignment_id, _owner, new_person in _moves(req):
        assignments.save_edit_cas(session, assignment_id, versions[assignment_id],
                                  person_id=new_person, source="manual")
    _executed(session, req)
    return f"swap #{request_id} executed"


def run_queued_swaps(session: Session) -> list[str]:
    """Execute the swaps queued while a generation ran (call after it has ended)."""
    queued = session.scalars(select(SwapRequest.id).where(
        SwapRequest.status == "approved", SwapRequest.queued_at.is_not(None))
        .order_by(SwapRequest.id)).all()
    return [execute_swap(session, request_id) for request_id in queued]
