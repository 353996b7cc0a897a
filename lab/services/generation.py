"""Schedule generation and the generation lock (frames 5.2 and 5.3).

A generation replaces the *generated* assignments of a block range inside one
transaction, writing in batches tagged with its task id. Manual and preloaded rows are
kept. A failed or cancelled generation rolls back, so the previous schedule stays intact.

The generation lock keeps swaps from running while a generation holds the schedule:

* PostgreSQL: a transaction-level advisory lock. The generator takes it exclusively; a
  swap executor *tries* to take it shared. A swap that holds it also keeps a
  generation from starting until the swap commits.
* SQLite: no advisory locks, and writes lock the whole file. A committed row in
  ``schedule_lock`` plays the lock; the generator inserts it before it starts writing and
  removes it in the same transaction as its last write (or after a cancel).

A swap that meets the lock is *queued*, not rejected: the user's request stands, and
it runs against the final schedule (see ``swaps.run_queued_swaps``). Generation upserts
rows on (block, person), so an assignment that is in the new plan keeps its id, and a
queued swap still finds it.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..models import Assignment, ScheduleLock, Task
from . import tasks

LOCK_KEY = 0x5C4ED  # the advisory lock's key: "schedule"
LOCK_NAME = "generation"


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def swap_may_run(session: Session) -> bool:
    """True unless a generation holds the schedule (PostgreSQL: then holds it shared)."""
    if _is_postgres(session):
        return bool(session.scalar(select(func.pg_try_advisory_xact_lock_shared(LOCK_KEY))))
    return session.get(ScheduleLock, LOCK_NAME) is None


def hold_schedule(session: Session) -> None:
    """Take the generation lock exclusively until the transaction ends (PostgreSQL): what
    the generator holds, and the coarsest fix, one writer of the schedule at a time."""
    session.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))


def _cancelled_by_database(exc: DBAPIError) -> bool:
    """57014 (pg_cancel_backend) or SQLite's interrupt(): someone stopped us on purpose."""
    orig = exc.orig
    return getattr(orig, "sqlstate", None) == "57014" or \
        getattr(orig, "sqlite_errorname", None) == "SQLITE_INTERRUPT"


def _fails_cleanly(method):
    """A database error mid-generation: roll back, mark the task failed, drop the lock.

    On PostgreSQL the advisory lock goes with the rollback; SQLite's lock row must be
    deleted, or every later swap would queue behind a generation that no longer runs.
    """

    @functools.wraps(method)
    def guarded(self: ScheduleGenerator) -> str:
        try:
            return method(self)
        except DBAPIError as exc:
            self._record_end(cancelled=_cancelled_by_database(exc))
            raise

    return guarded


@dataclass
class ScheduleGenerator:
    """One generation run, split into the steps a scenario can interleave with others.

    `locked=False, cooperative=False` is the original code: no generation lock, and a
    cancel request is never looked at.
    """

    session: Session
    plan: list[tuple[int, int, int, str]]
    batch_size: int
    locked: bool = True
    cooperative: bool = True
    task_id: int = 0
    written: int = 0
    state: str = "new"

    def start(self) -> str:
        """Record the run as running (committed, so others can see it), then take the lock."""
        s = self.session
        task = tasks.create_task(s, "generate")
        task.status, self.task_id = "running", task.id
        if self.locked and not _is_postgres(s):
            s.add(ScheduleLock(name=LOCK_NAME, task_id=task.id))
        s.commit()
        if self.locked and _is_postgres(s):
            hold_schedule(s)
        self.state = "running"
        return f"task #{self.task_id} running" + (" with the generation lock" if self.locked else "")

    @_fails_cleanly
    def write_batch(self) -> str:
        """Upsert the next batch; first, if cooperative, honour a cancel request."""
        if self.state != "running":
            return f"task #{self.task_id} is {self.state}: nothing to write"
        if self.cooperative and tasks.cancel_requested(self.session, self.task_id):
            return self._cancel()
        batch = self.plan[self.written:self.written + self.batch_size]
        self._upsert(batch)
        self.written += len(batch)
        # No progress UPDATE on the task row here: inside this transaction it would
        # row-lock the task and block the very cancel request this loop must notice.
        return f"wrote {len(batch)} assignments ({self.written}/{len(self.plan)})"

    @_fails_cleanly
    def finish(self) -> str:
        """Drop generated rows the plan no longer has, mark the task completed, unlock.

        The caller commits: that commit publishes the whole new schedule at once.
        """
        if self.state != "running":
            return f"task #{self.task_id} is {self.state}: nothing to finish"
        s = self.session
        blocks = sorted({b for b, _, _, _ in self.plan})
        removed = s.execute(delete(Assignment).where(
            Assignment.block_id.in_(blocks), Assignment.source == "generated",
            (Assignment.task_id.is_(None)) | (Assignment.task_id != self.task_id))).rowcount
        s.execute(update(Task).where(Task.id == self.task_id)
                  .values(status="completed", progress=100))
        self._unlock()
        self.state = "completed"
        return f"generation complete: {self.written} written, {removed} stale removed"

    def run(self) -> str:
        """All steps in one go (what a background worker does)."""
        self.start()
        while self.state == "running" and self.written < len(self.plan):
            self.write_batch()
        result = self.finish()
        self.session.commit()
        return result

    def _upsert(self, batch: list[tuple[int, int, int, str]]) -> None:
        self.session.execute(upsert(self.session.get_bind().dialect.name, batch, self.task_id))

    def _record_end(self, cancelled: bool) -> None:
        """Roll back, then record failed/cancelled and drop the lock, in a new transaction.

        The record itself can be hit too (SQLite's interrupt() lands on whatever statement
        runs next), so it is tried twice; an interrupted record counts as a cancel.
        """
        try:
            self._end(cancelled)
        except DBAPIError as again:
            self._end(cancelled or _cancelled_by_database(again))

    def _end(self, cancelled: bool) -> None:
        s = self.session
        s.rollback()
        if cancelled:
            tasks.acknowledge_cancel(s, self.task_id)
        else:
            s.execute(update(Task).where(Task.id == self.task_id).values(status="failed"))
        self._unlock()
        s.commit()
        self.state = "cancelled" if cancelled else "failed"

    def _unlock(self) -> None:
        """SQLite: delete the lock row (PostgreSQL's advisory lock ends with the transaction)."""
        if self.locked and not _is_postgres(self.session):
            self.session.execute(delete(ScheduleLock).where(ScheduleLock.name == LOCK_NAME))

    def _cancel(self) -> str:
        """Acknowledge a cancel: drop the partial work, then record it in a new transaction."""
        s = self.session
        s.rollback()
        tasks.acknowledge_cancel(s, self.task_id)
        self._unlock()
        s.commit()
        self.state = "cancelled"
        return (f"cancel acknowledged after {self.written} of {len(self.plan)} assignments:"
                " partial work rolled back, task cancelled")


def upsert(dialect_name: str, batch: list[tuple[int, int, int, str]], task_id: int):
    """INSERT ... ON CONFLICT (block, person) DO UPDATE, sparing manual and preloaded rows.

    Upserting keeps the id of every assignment the new plan still has, so swaps that
    name it (queued ones included) still find it.
    """
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    rows = [dict(block_id=b, person_id=p, rotation_template_id=t, role=r, notes="",
                 source="generated", task_id=task_id, version=1,
                 updated_at=func.current_timestamp()) for b, p, t, r in batch]
    stmt = dialect.insert(Assignment).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=["block_id", "person_id"],
        set_={"rotation_template_id": stmt.excluded.rotation_template_id,
              "role": stmt.excluded.role, "task_id": stmt.excluded.task_id,
              "updated_at": stmt.excluded.updated_at},
        where=Assignment.source == "generated",
    )


async def generate_async(engine, plan: list[tuple[int, int, int, str]], task_id: int,
                         batch_size: int, after_batch, *, record_cancel: bool = True) -> str:
    """The asyncio worker: one transaction, batches, and clean-up on Task.cancel().

    `after_batch(n)` is awaited after batch n is written; the caller uses it to decide
    when to cancel (an event, never a timer). `record_cancel=False` is the worker without
    its clean-up: the cancel still stops it, but the task stays "running" for good.
    """
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            for n, start in enumerate(range(0, len(plan), batch_size), start=1):
                await conn.execute(upsert(engine.dialect.name,
                                          plan[start:start + batch_size], task_id))
                await after_batch(n)
            await transaction.commit()
            return "completed"
        except asyncio.CancelledError:
            await transaction.rollback()  # the batches written so far go with it
            if not record_cancel:
                raise
            async with engine.begin() as done:
                await done.execute(update(Task).where(Task.id == task_id).values(
                    status="cancelled", cancelled_at=func.current_timestamp()))
            raise
