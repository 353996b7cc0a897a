"""The residency scheduler's tables: the ground every race in the lab happens on.

The same metadata creates identical tables on PostgreSQL and SQLite, so a race that
behaves differently on the two backends does so because of the engines, not the schema.
Enumerations are CHECK-constrained strings (not native PostgreSQL enums) for that reason.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Index,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

FACULTY_ROLES = ("pd", "apd", "oic", "dept_chief", "sports_med", "core")
ASSIGNMENT_ROLES = ("primary", "supervising", "backup")
SWAP_TYPES = ("one_to_one", "absorb")
SWAP_STATUSES = ("pending", "approved", "executed", "rejected", "cancelled", "rolled_back")
ASSIGNMENT_SOURCES = ("generated", "manual", "preloaded")
TASK_STATUSES = ("pending", "running", "cancelling", "cancelled", "completed", "failed")


def _enum(*values: str, name: str) -> Enum:
    return Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


class Base(DeclarativeBase):
    pass


class Person(Base):
    """A resident (pgy_level 1-3) or a faculty member (faculty_role)."""

    __tablename__ = "person"
    __table_args__ = (
        CheckConstraint("pgy_level BETWEEN 1 AND 3", name="ck_person_pgy_level"),
        CheckConstraint(
            "(kind = 'resident' AND pgy_level IS NOT NULL AND faculty_role IS NULL)"
            " OR (kind = 'faculty' AND pgy_level IS NULL AND faculty_role IS NOT NULL)",
            name="ck_person_kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(_enum("resident", "faculty", name="person_kind"))
    pgy_level: Mapped[int | None] = mapped_column(Integer)
    faculty_role: Mapped[str | None] = mapped_column(_enum(*FACULTY_ROLES, name="faculty_role"))

    def __repr__(self) -> str:
        return f"Person({self.id}, {self.name!r})"


class Block(Base):
    """One half-day of the calendar; (date, time_of_day) is unique."""

    __tablename__ = "block"
    __table_args__ = (UniqueConstraint("date", "time_of_day", name="uq_block_date_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date)
    time_of_day: Mapped[str] = mapped_column(_enum("AM", "PM", name="time_of_day"))
    block_number: Mapped[int] = mapped_column(Integer)
    is_weekend: Mapped[bool] = mapped_column(default=False)
    is_holiday: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return f"Block({self.id}, {self.date} {self.time_of_day})"


class RotationTemplate(Base):
    """A kind of work (clinic, inpatient...) with its capacity and supervision rules."""

    __tablename__ = "rotation_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    activity_type: Mapped[str] = mapped_column(String(50))
    abbreviation: Mapped[str] = mapped_column(String(10))
    max_residents: Mapped[int] = mapped_column(Integer)
    supervision_required: Mapped[bool] = mapped_column(default=True)
    max_supervision_ratio: Mapped[int] = mapped_column(Integer, default=4)


class Task(Base):
    """A long-running job (schedule generation) that can be cancelled between batches."""

    __tablename__ = "task"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(_enum(*TASK_STATUSES, name="task_status"),
                                        default="pending")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ScheduleLock(Base):
    """The generation lock where PostgreSQL's advisory locks are not available (SQLite)."""

    __tablename__ = "schedule_lock"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id"))


class Assignment(Base):
    """Who works which half-day on which rotation. Nobody is booked twice in one block.

    This mapping is the original application's: no optimistic locking. The `version`
    column is there for the fix, `VersionedAssignment`, which maps the same rows.
    """

    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("block_id", "person_id", name="uq_assignment_block_person"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    block_id: Mapped[int] = mapped_column(ForeignKey("block.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    rotation_template_id: Mapped[int] = mapped_column(ForeignKey("rotation_template.id"))
    role: Mapped[str] = mapped_column(_enum(*ASSIGNMENT_ROLES, name="assignment_role"))
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    source: Mapped[str] = mapped_column(_enum(*ASSIGNMENT_SOURCES, name="assignment_source"),
                                        default="generated", server_default="generated")
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id"))

    block: Mapped[Block] = relationship()
    person: Mapped[Person] = relationship()
    rotation_template: Mapped[RotationTemplate] = relationship()

    def __repr__(self) -> str:
        return f"Assignment({self.id}, block={self.block_id}, person={self.person_id})"


class VersionedAssignment(Base):
    """The same assignment rows, mapped with optimistic locking (the fix for frame 5.1).

    SQLAlchemy's `version_id_col` adds ``AND version = :loaded`` to every UPDATE and bumps
    the version; an UPDATE that matches no row raises StaleDataError.
    """

    __table__ = Assignment.__table__
    __mapper_args__ = {"version_id_col": Assignment.__table__.c.version}


class CallNight(Base):
    """One night of call coverage: the row to lock when faculty change who is on call."""

    __tablename__ = "call_night"

    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    min_faculty: Mapped[int] = mapped_column(Integer, default=1)


class CallAssignment(Base):
    """Overnight, weekend or backup call; (date, person, call_type) is unique."""

    __tablename__ = "call_assignment"
    __table_args__ = (UniqueConstraint("date", "person_id", "call_type", name="uq_call"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[dt.date] = mapped_column(ForeignKey("call_night.date"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    call_type: Mapped[str] = mapped_column(_enum("overnight", "weekend", "backup",
                                                 name="call_type"))


_OPEN_SWAP = "status IN ('pending', 'approved')"


class SwapRequest(Base):
    """A faculty member's request to trade (one_to_one) or hand over (absorb) an assignment.

    At most one open (pending or approved) request per source assignment: a partial unique
    index says so on both PostgreSQL and SQLite.
    """

    __tablename__ = "swap_request"
    __table_args__ = (
        Index("uq_swap_open_source", "source_assignment_id", unique=True,
              postgresql_where=text(_OPEN_SWAP), sqlite_where=text(_OPEN_SWAP)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_faculty_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    source_assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id"))
    target_faculty_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    target_assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignment.id"))
    swap_type: Mapped[str] = mapped_column(_enum(*SWAP_TYPES, name="swap_type"))
    status: Mapped[str] = mapped_column(_enum(*SWAP_STATUSES, name="swap_status"), default="pending")
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime)
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    executed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
