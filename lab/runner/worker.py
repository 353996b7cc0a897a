"""A session's worker thread: its own connection, isolation level and SQLAlchemy Session.

Each step runs here, so a step that waits for a lock blocks only this thread while the
conductor, on the main thread, watches and moves on.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..errors import DomainError, RunFailed
from .raw_sql import execute_raw
from .scenario import COMMIT, ROLLBACK, RawSQL, Step
from .trace import Outcome, describe

CONNECT_TIMEOUT_S = 15.0


@dataclass(eq=False)
class Job:
    """One step in flight. `done` is set by the worker when the step has finished."""

    step: Step
    before: Callable[[Connection], None] | None = None
    markers: tuple[str, ...] = ()  # isolationtester blocker markers: "*" or step names
    launched_as: int = 0  # how many steps had been launched, this one included
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    crash: BaseException | None = None
    started: float = 0.0
    finished: float = 0.0


def classify(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) for errors a race is expected to produce, None for real bugs."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        orig = exc.orig
        code = (getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
                or type(orig).__name__)
        return code, str(orig).strip().splitlines()[0]
    if isinstance(exc, StaleDataError):
        return "StaleDataError", str(exc).strip().splitlines()[0]
    if isinstance(exc, DomainError):
        return exc.code, str(exc)
    return None


def execute(step: Step, session: Session,
            before: Callable[[Connection], None] | None = None) -> Outcome:
    """Run one step and describe what the session saw; expected errors become outcomes.

    `before` runs first on the session's connection (the conductor's deadlock-timeout
    setting), except for COMMIT/ROLLBACK, which must not open a transaction of their own.
    """
    if isinstance(step.action, RawSQL):
        return execute_raw(step.action.text, session.bind, before)
    aborted = session.info.get("rolled_back_after_error")
    if aborted and step.action in (COMMIT, ROLLBACK):
        del session.info["rolled_back_after_error"]
        return Outcome(f"nothing to {step.action.lower()}: the transaction was rolled back"
                       f" after {aborted}")
    if aborted:  # as in PostgreSQL, nothing more runs in a transaction that failed
        return Outcome(f"skipped: the transaction was rolled back after {aborted}", skipped=True)
    try:
        if before is not None and step.action not in (COMMIT, ROLLBACK):
            before(session.connection())
        if step.action == COMMIT:
            session.commit()
            return Outcome("COMMIT", ended_transaction="commit")
        if step.action == ROLLBACK:
            session.rollback()
            return Outcome("ROLLBACK", ended_transaction="rollback")
        if isinstance(step.action, str):
            result = session.execute(text(step.action))
            if result.returns_rows:
                rows = tuple(tuple(r) for r in result)
                return Outcome(describe(rows), rows=rows)
            tag = step.action.split(None, 1)[0].upper()
            return Outcome(f"{tag} {result.rowcount}", rowcount=result.rowcount)
        value: Any = step.action(session)
        if isinstance(value, int) and not isinstance(value, bool):
            return Outcome(f"rowcount {value}", rowcount=value)
        return Outcome(describe(value))
    except Exception as exc:
        known = classify(exc)
        if known is None:
            raise
        with contextlib.suppress(Exception):
            session.rollback()
        _really_roll_back(session)
        session.info["last_error"] = known[0]  # what an application's except-block sees
        if step.action not in (COMMIT, ROLLBACK):  # a failed COMMIT already ended it
            session.info["rolled_back_after_error"] = known[0]
        return Outcome(code=known[0], error=known[1], ended_transaction="rollback")


def _really_roll_back(session: Session) -> None:
    """SQLite: a COMMIT refused with SQLITE_BUSY leaves the transaction open, and its
    locks held, though SQLAlchemy has given up on it; end it, as the trace says."""
    dbapi = session.bind.connection.dbapi_connection
    if isinstance(dbapi, sqlite3.Connection) and dbapi.in_transaction:
        dbapi.rollback()


class SessionWorker:
    def __init__(self, name: str, open_connection: Callable[[], Connection],
                 changed: threading.Condition):
        self.name = name
        self._open = open_connection
        self._changed = changed
        self._inbox: queue.SimpleQueue[Job | Callable[[Session], Any] | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.connection: Connection | None = None
        self.session: Session | None = None
        self.thread = threading.Thread(target=self._main, name=f"lab-session-{name}", daemon=True)
        self.thread.start()
        if not self._ready.wait(CONNECT_TIMEOUT_S):
            raise RunFailed(f"session {name} could not connect within {CONNECT_TIMEOUT_S:g} s")
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            self.connection = self._open()
            self.session = Session(bind=self.connection)
        except BaseException as exc:  # handed to the conductor's thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while (job := self._inbox.get()) is not None:
                if isinstance(job, Job):
                    self._run(job)
                else:
                    job(self.session)
        finally:
            with contextlib.suppress(Exception):
                self.session.close()
            with contextlib.suppress(Exception):
                self.connection.close()

    def _run(self, job: Job) -> None:
        job.started = time.monotonic()
        try:
            job.outcome = execute(job.step, self.session, job.before)
        except BaseException as exc:
            job.crash = exc
        job.finished = time.monotonic()
        job.done.set()
        with self._changed:
            self._changed.notify_all()

    def submit(self, job: Job) -> None:
        self._inbox.put(job)

    def call(self, fn: Callable[[Session], Any], timeout: float) -> Any:
        """Run `fn(session)` on this session's thread and return its result."""
        box: list[Any] = []
        done = threading.Event()

        def wrapped(session: Session) -> None:
            try:
                box.append(("ok", fn(session)))
            except BaseException as exc:
                box.append(("err", exc))
            done.set()

        self._inbox.put(wrapped)
        if not done.wait(timeout):
            raise RunFailed(f"session {self.name} did not answer within {timeout:g} s")
        kind, value = box[0]
        if kind == "err":
            raise value
        return value

    def stop(self) -> None:
        self._inbox.put(None)
