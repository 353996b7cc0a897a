"""Work hours (invariant 8): the rule, its check, and booking a shift past the check.

A half-day counts as 6 hours. Over any 28 days the average must stay at most 80 hours a
week: 4 x 80 = 320 hours, and 320 / 6 = 53.3, so at most 53 half-days (318 h; a 54th
makes 324 h). And nobody works more than 6 days in a row. With two half-days a day the
second rule binds first: a day off in every 7 leaves at most 24 days, 48 half-days, 288 h
in 28 days. The check keeps both, as the rota's rule has both.

The rule reads *all* of a resident's shifts, while a booking writes one new row. Two
coordinators can each pass the check and insert different rows: write skew, which no row
lock on the rows written can stop. The fix materialises the conflict on the one row every
booking for that person shares, the person's own: ``lock_person`` first, then check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import DomainError
from ..models import Assignment, Block, Person
from .writes import begin_write

HOURS_PER_HALF_DAY = 6
WINDOW_DAYS = 28
MAX_HOURS = 80 * WINDOW_DAYS // 7  # 320 h in any 28 days: at most 53 half-days
MAX_DAYS_IN_A_ROW = 6

HalfDay = tuple[dt.date, str]  # (date, "AM" or "PM")


class DutyHoursError(DomainError):
    code = "duty-hours"


def day(d: dt.date) -> str:
    """'Sat 11 Jul': how a coordinator names a day."""
    return f"{d:%a} {d.day} {d:%b}"


def longest_run(days: Iterable[dt.date]) -> tuple[int, dt.date | None, dt.date | None]:
    """(length, first day, last day) of the longest run of consecutive working days."""
    best: tuple[int, dt.date | None, dt.date | None] = (0, None, None)
    start = prev = None
    for d in sorted(set(days)):
        start = start if prev is not None and d - prev == dt.timedelta(days=1) else d
        prev = d
        if (d - start).days + 1 > best[0]:
            best = ((d - start).days + 1, start, d)
    return best


def busiest_window(half_days: Iterable[HalfDay]) -> int:
    """The most hours worked in any 28-day window."""
    dates = sorted(d for d, _ in half_days)
    most, lo = 0, 0
    for hi, d in enumerate(dates):
        while (d - dates[lo]).days >= WINDOW_DAYS:
            lo += 1
        most = max(most, (hi - lo + 1) * HOURS_PER_HALF_DAY)
    return most


def broken_rules(half_days: list[HalfDay]) -> list[str]:
    """What invariant 8 says about these shifts: [] when both rules hold."""
    broken = []
    run, first, last = longest_run(d for d, _ in half_days)
    if run > MAX_DAYS_IN_A_ROW:
        broken.append(f"{run} days in a row ({day(first)} - {day(last)}),"
                      f" at most {MAX_DAYS_IN_A_ROW}")
    hours = busiest_window(half_days)
    if hours > MAX_HOURS:
        broken.append(f"{hours} h in 28 days, at most {MAX_HOURS}")
    return broken


def lock_person(session: Session, person_id: int) -> str:
    """Materialise the conflict: SELECT ... FROM person WHERE id = :id FOR UPDATE.

    On SQLite, begin_write makes it BEGIN IMMEDIATE (the whole database's write lock).
    """
    begin_write(session)
    name = session.scalars(select(Person.name).where(Person.id == person_id)
                           .with_for_update()).one()
    return f"locked {name}'s row"


def shifts(session: Session, person_id: int, around: dt.date) -> list[HalfDay]:
    """The person's half-days in the 27 days either side of `around`: every 28-day window
    and every run of days that could include it."""
    span = dt.timedelta(days=WINDOW_DAYS - 1)
    return [tuple(r) for r in session.execute(
        select(Block.date, Block.time_of_day).join(Assignment)
        .where(Assignment.person_id == person_id,
               Block.date.between(around - span, around + span))
        .order_by(Block.date, Block.time_of_day))]


def check_shift(session: Session, person_id: int, block_id: int) -> str:
    """Would one more half-day in `block_id` break invariant 8? DutyHoursError if so."""
    block = session.get_one(Block, block_id)
    booked = shifts(session, person_id, block.date)
    after = booked + [(block.date, block.time_of_day)]
    name = session.scalar(select(Person.name).where(Person.id == person_id))
    broken = broken_rules(after)
    if broken:
        raise DutyHoursError(f"{name} on {day(block.date)} would work " + "; ".join(broken))
    run = longest_run(d for d, _ in after)[0]
    return (f"sees {len(booked)} shifts; with {day(block.date)} {block.time_of_day}:"
            f" at most {run} days in a row, {busiest_window(after)} h in 28 days: allowed")


def add_shift(session: Session, person_id: int, block_id: int, template_id: int) -> str:
    """Book the half-day; call check_shift in the same transaction first."""
    session.add(Assignment(block_id=block_id, person_id=person_id,
                           rotation_template_id=template_id, role="primary", notes="",
                           source="manual", updated_at=func.current_timestamp()))
    session.flush()
    block = session.get_one(Block, block_id)
    return f"booked person #{person_id} on {day(block.date)} {block.time_of_day}"
