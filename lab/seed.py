"""A small, fixed residency schedule that every scenario starts from.

Fixed dates and insertion order make every id predictable (assignment #1 is always
Resident One in clinic on the first Monday morning), which keeps traces identical
from run to run.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from .models import Assignment, Block, CallAssignment, CallNight, Person, RotationTemplate

START = dt.date(2026, 7, 6)  # a Monday: the first day of the academic year's block 1
SEED_TIME = dt.datetime(2026, 7, 1, 8, 0)
WEEKS = 4


def seed_schedule(session: Session) -> None:
    """3 residents, 3 faculty, 2 rotations, 4 weeks of AM/PM blocks, week 1 staffed.

    Week 1, Monday to Friday: two residents in clinic each morning under one faculty
    supervisor, one resident on inpatient each afternoon under another.
    """
    residents = [
        Person(name=f"Resident {n}", email=f"resident{i}@example.org", kind="resident", pgy_level=i)
        for i, n in enumerate(("One", "Two", "Three"), start=1)
    ]
    faculty = [
        Person(name=f"Dr {n}", email=f"{n.lower()}@example.org", kind="faculty", faculty_role=role)
        for n, role in (("Adams", "pd"), ("Baker", "core"), ("Chen", "core"))
    ]
    clinic = RotationTemplate(
        name="Clinic", activity_type="outpatient", abbreviation="CLI", max_residents=2
    )
    inpatient = RotationTemplate(
        name="Inpatient", activity_type="inpatient", abbreviation="INP", max_residents=1
    )
    session.add_all([*residents, *faculty, clinic, inpatient])

    blocks = []
    for day in range(7 * WEEKS):
        date = START + dt.timedelta(days=day)
        for time_of_day in ("AM", "PM"):
            blocks.append(
                Block(
                    date=date,
                    time_of_day=time_of_day,
                    block_number=1,
                    is_weekend=date.weekday() >= 5,
                )
            )
    session.add_all(blocks)
    session.flush()

    for block, person_id, template_id, role in week_one_plan():
        session.add(Assignment(block_id=block, person_id=person_id,
                               rotation_template_id=template_id, role=role, notes="",
                               updated_at=SEED_TIME))
        session.flush()

    # The first night: Dr Adams and Dr Baker on overnight call; one of them is enough.
    session.add(CallNight(date=START, min_faculty=1))
    session.flush()
    for person_id in FACULTY[:2]:
        session.add(CallAssignment(date=START, person_id=person_id, call_type="overnight"))
        session.flush()


def block_id(day: int, time_of_day: str) -> int:
    """The id seed_schedule gives the block of `day` (0 = the first Monday), AM or PM."""
    return 2 * day + (1 if time_of_day == "AM" else 2)


RESIDENTS, FACULTY = (1, 2, 3), (4, 5, 6)  # person ids: Resident One..Three, Dr Adams..Chen
CLINIC, INPATIENT = 1, 2


def week_one_plan() -> list[tuple[int, int, int, str]]:
    """Week 1's staffing as (block_id, person_id, rotation_template_id, role).

    Each weekday morning Residents One and Two work clinic under Dr Adams; each afternoon
    Resident Three works inpatient under Dr Baker. Schedule generation regenerates this
    same plan, so its rows keep their ids.
    """
    plan = []
    for day in range(5):
        am, pm = block_id(day, "AM"), block_id(day, "PM")
        plan += [(am, RESIDENTS[0], CLINIC, "primary"), (am, RESIDENTS[1], CLINIC, "primary"),
                 (am, FACULTY[0], CLINIC, "supervising"),
                 (pm, RESIDENTS[2], INPATIENT, "primary"), (pm, FACULTY[1], INPATIENT, "supervising")]
    return plan
