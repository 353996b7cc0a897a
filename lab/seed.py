"""A small, fixed residency schedule that every scenario starts from.

Fixed dates and insertion order make every id predictable (assignment #1 is always
Resident One in clinic on the first Monday morning), which keeps traces identical
from run to run.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from .models import Assignment, Block, Person, RotationTemplate

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

    def book(block: Block, person: Person, template: RotationTemplate, role: str) -> Assignment:
        return Assignment(
            block=block, person=person, rotation_template=template, role=role,
            notes="", updated_at=SEED_TIME,
        )

    for weekday in range(5):
        am, pm = blocks[2 * weekday], blocks[2 * weekday + 1]
        session.add_all(
            [
                book(am, residents[0], clinic, "primary"),
                book(am, residents[1], clinic, "primary"),
                book(am, faculty[0], clinic, "supervising"),
                book(pm, residents[2], inpatient, "primary"),
                book(pm, faculty[1], inpatient, "supervising"),
            ]
        )
        session.flush()
