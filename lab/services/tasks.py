"""Long-running tasks that can be cancelled cooperatively (frame 5.3).

Cancelling is a request, not a kill: ``request_cancel`` moves a running task to
``cancelling``; the worker notices between batches (``cancel_requested``), rolls back its
partial work and calls ``acknowledge_cancel``. Cancelling a finished task, or cancelling
twice, changes nothing.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from ..models import Task

OPEN = ("pending", "running")


def create_task(session: Session, kind: str) -> Task:
    task = Task(kind=kind, status="pending", progress=0)
    session.add(task)
    session.flush()
    return task


def request_cancel(session: Session, task_id: int) -> str:
    """Ask a task to stop; returns what an API would answer ("cancelling" or why not)."""
    changed = session.execute(
        update(Task).where(Task.id == task_id, Task.status.in_(OPEN))
        .values(status="cancelling", cancel_requested_at=func.current_timestamp())
        .execution_options(synchronize_session=False)).rowcount
    if changed:
        return "cancelling"
    status = session.scalar(select(Task.status).where(Task.id == task_id))
    return f"task #{task_id} is {status}: nothing to cancel"


def request_cancel_naive(session: Session, task_id: int) -> str:
    """The original: flip the status to cancelled and hope the worker stops. It doesn't."""
    session.execute(update(Task).where(Task.id == task_id).values(status="cancelled")
                    .execution_options(synchronize_session=False))
    return "cancelled"


def cancel_requested(session: Session, task_id: int) -> bool:
    return session.scalar(select(Task.status).where(Task.id == task_id)) == "cancelling"


def acknowledge_cancel(session: Session, task_id: int) -> None:
    session.execute(update(Task).where(Task.id == task_id)
                    .values(status="cancelled", cancelled_at=func.current_timestamp())
                    .execution_options(synchronize_session=False))


def _until_not_waiting(session: Session, pid: int, bound_s: float = 5.0) -> None:
    """pg_cancel_backend only sends a signal; return once the target has stopped waiting.

    Without this, whether the cancelled statement ends before or after the caller's next
    step would depend on signal delivery, not on the order of steps.
    """
    deadline = time.monotonic() + bound_s
    while session.scalar(select(func.cardinality(func.pg_blocking_pids(pid)))):
        if time.monotonic() > deadline:
            raise TimeoutError(f"backend {pid} still waits {bound_s:g} s after the cancel")
        time.sleep(0.0005)  # ok-sleep: a poll that only observes the cancel landing; the order is fixed


def cancel_statement(session: Session, worker: Connection,
                     worker_pid: int | None) -> str:
    """Stop the statement `worker` (server process `worker_pid`) is running, from the
    database's side.

    PostgreSQL: ``pg_cancel_backend`` (the worker's statement fails with 57014, its
    transaction is aborted, the locks it waited for are untouched). SQLite has no
    server: sqlite3's ``interrupt()`` is the closest thing, and it only bites once the
    interrupted statement is actually running (not while it waits for the lock).
    """
    if session.get_bind().dialect.name == "postgresql":
        sent = session.scalar(select(func.pg_cancel_backend(worker_pid)))
        _until_not_waiting(session, worker_pid)
        return f"pg_cancel_backend(worker) -> {sent}"
    worker.connection.dbapi_connection.interrupt()
    return "interrupt() sent to the worker's connection"
