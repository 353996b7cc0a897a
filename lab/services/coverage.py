"""Coverage rules that span rows: on-call nights, rotation capacity, supervision (Catalog II).

Each rule is a check followed by a write, and the check reads rows the write does not
touch. Row locks cannot protect that, and neither can snapshot isolation (write skew).
Two fixes work: SERIALIZABLE (the database detects the dangerous pattern, 40001), or
*materialising the conflict*: both transactions first lock one parent row, the call
night or the block, with ``FOR UPDATE``, so they queue. That holds under READ COMMITTED
only: under REPEATABLE READ the second one acts on its old snapshot after the wait.
*Claiming* the row (writing it, ``claim_*``) holds at every level: the second claimer
then fails with 40001 after the wait instead, and retries with a fresh snapshot.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..errors import DomainError
from ..models import Assignment, Block, CallAssignment, CallNight, Person, RotationTemplate
from .writes import begin_write


class CoverageError(DomainError):
    code = "coverage"


def lock_night(session: Session, night: dt.date) -> str:
    """Materialise the conflict: lock the night's coverage row before checking it."""
    begin_write(session)
    session.scalars(select(CallNight).where(CallNight.date == night).with_for_update()).one()
    return f"locked the coverage row of {night}"


def claim_night(session: Session, night: dt.date) -> str:
    """Materialise the conflict as a write of the night's row, seen at every level."""
    begin_write(session)
    session.execute(update(CallNight).where(CallNight.date == night)
                    .values(min_faculty=CallNight.min_faculty))
    return f"claimed the coverage row of {night}"


def others_on_call(session: Session, night: dt.date, person_id: int) -> int:
    return session.scalar(select(func.count()).select_from(CallAssignment).where(
        CallAssignment.date == night, CallAssignment.call_type == "overnight",
        CallAssignment.person_id != person_id))


def leave_call(session: Session, night: dt.date, person_id: int, others_seen: int) -> str:
    """Take `person_id` off call, if the check this transaction made left someone on."""
    if others_seen < 1:
        raise CoverageError(f"person #{person_id} is the last one on call on {night}")
    session.execute(CallAssignment.__table__.delete().where(
        CallAssignment.date == night, CallAssignment.person_id == person_id))
    return f"person #{person_id} is off call on {night}"


def lock_block(session: Session, block_id: int) -> str:
    """Materialise a per-block conflict by locking the block row."""
    begin_write(session)
    session.scalars(select(Block).where(Block.id == block_id).with_for_update()).one()
    return f"locked block #{block_id}"


def claim_block(session: Session, block_id: int) -> str:
    """Materialise a per-block conflict as a write of the block row, seen at every level."""
    begin_write(session)
    session.execute(update(Block).where(Block.id == block_id)
                    .values(is_holiday=Block.is_holiday))
    return f"claimed block #{block_id}"


def residents_in(session: Session, block_id: int, template_id: int) -> tuple[int, int]:
    """(residents booked on the rotation in the block, the rotation's max_residents)."""
    count = session.scalar(select(func.count()).select_from(Assignment).join(Person).where(
        Assignment.block_id == block_id, Assignment.rotation_template_id == template_id,
        Person.kind == "resident"))
    return count, session.get_one(RotationTemplate, template_id).max_residents


def required_supervisors(pgy1: int, senior: int) -> int:
    """Invariant 2: ceil(PGY-1 / 2) + ceil(PGY-2/3 / 4), and at least one."""
    return max(1, math.ceil(pgy1 / 2) + math.ceil(senior / 4))


def supervision(session: Session, block_id: int) -> tuple[int, int]:
    """(faculty supervising the block, faculty its residents require)."""
    rows = session.execute(select(Person.kind, Person.pgy_level).join(Assignment).where(
        Assignment.block_id == block_id)).all()
    faculty = sum(1 for kind, _ in rows if kind == "faculty")
    pgy1 = sum(1 for kind, level in rows if kind == "resident" and level == 1)
    senior = sum(1 for kind, level in rows if kind == "resident" and level and level > 1)
    return faculty, required_supervisors(pgy1, senior)
