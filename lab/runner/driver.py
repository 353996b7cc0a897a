"""How a session runs its steps, per input format: the protocol and the ORM driver.

Python scenarios drive each session through a SQLAlchemy ``Session`` (`ORM`); spec files
send their SQL as psql does (``lab.spec.driver.SpecDriver``). The conductor and the stage
talk to a driver only through `SessionDriver`, so neither branches on the input format.

Each session also has a `SessionContext`, owned by the runner: what the runner knows of
that session (its backend pid, its peers, the error that ended its transaction). A step
reads it with ``context(session)``; `session.info` stays the scenario's own notepad.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..errors import ConflictError, DomainError
from .outcome import ErrorKind, StepError
from .trace import Notice, Notification, ResultSet, StepResult, describe

if TYPE_CHECKING:
    from .scenario import Scenario, Step, Variant
    from .stage import Stage

COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
_CONTEXT = "lab.context"

Before = Callable[[Connection], None]


@dataclass(eq=False)
class SessionContext:
    name: str
    connection: Connection
    backend_pid: int | None = None  # PostgreSQL: the server process serving this session
    peers: dict[str, SessionContext] = field(default_factory=dict)
    failed: str | None = None  # the code that rolled the open transaction back
    last_error: str | None = None  # the latest error code, as an except-block would see it
    commits: int = 0  # COMMITs the session has made, its steps' own included


def context(session: Session) -> SessionContext:
    """The runner's context of the session a step runs in."""
    return session.info[_CONTEXT]


class SessionDriver(Protocol):
    """What differs between input formats, behind one small interface."""

    free_order: bool  # a permutation may reorder and repeat a session's steps
    sends_sql_as_written: bool  # True: no SQLAlchemy compiling (FOR UPDATE is not dropped)
    ends_idle_first: bool  # at the end, roll back idle sessions before awaiting waiters

    def connect(self, db: Any, isolation: str) -> Connection: ...
    def conductor_connection(self, db: Any) -> Connection: ...
    def monitored(self, session: Session) -> Connection: ...
    def registered(self, session: Session) -> None: ...
    def execute(self, step: Step, session: Session, before: Before | None) -> StepResult: ...

    def skips(self, ctx: SessionContext) -> bool:
        """The session's next step will do nothing at all: it sends nothing, takes and
        waits for no lock (a step of a transaction that already failed)."""
        ...

    def end_transaction(self, session: Session) -> bool: ...
    def reset(self, session: Session, restore: Before | None) -> None: ...
    def setup(self, stage: Stage, scenario: Scenario) -> list[ResultSet]: ...
    def session_setup(self, variant: Variant) -> Mapping[str, Any]: ...
    def session_teardown(self, variant: Variant) -> Mapping[str, Any]: ...
    def teardown(self, stage: Stage) -> list[ResultSet]: ...

    def notices(self, session: Session, *, finished: bool) -> list[Notice]:
        """Server notices the session received since last asked, oldest first. Called
        from the conductor's thread, also while the session's step waits: until it has
        `finished`, only those that came before the step's first result."""
        ...

    def notifications(self, session: Session) -> list[Notification]:
        """NOTIFYs the session received since last asked (reported after a step)."""
        ...

    def serial_state(self, stage: Stage, tables: Mapping[str, tuple]) -> Mapping[str, tuple]: ...
    def replay_args(self, scenario: Scenario, variant: Variant) -> list[str]: ...
    def replay_python(self, scenario: Scenario, variant: Variant) -> str: ...


def classify(exc: BaseException) -> StepError | None:
    """The error a race is expected to produce, classified once; None for real bugs."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        orig = exc.orig
        code = (getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
                or type(orig).__name__)
        return StepError(code, str(orig).strip().splitlines()[0], ErrorKind.DATABASE)
    if isinstance(exc, StaleDataError):
        return StepError("StaleDataError", str(exc).strip().splitlines()[0], ErrorKind.CONFLICT)
    if isinstance(exc, DomainError):
        kind = ErrorKind.CONFLICT if isinstance(exc, ConflictError) else ErrorKind.RULE
        return StepError(exc.code, str(exc), kind)
    return None


class OrmDriver:
    """Python scenarios: a step is SQL text, COMMIT/ROLLBACK, or a callable of the Session."""

    free_order = False
    sends_sql_as_written = False
    ends_idle_first = True

    def connect(self, db: Any, isolation: str) -> Connection:
        return db.open_connection(isolation)

    def conductor_connection(self, db: Any) -> Connection:
        """Setup and final state of the lab's own scenarios: the lab's own login."""
        return db.engine.connect()

    def monitored(self, session: Session) -> Connection:
        return session.connection()

    def skips(self, ctx: SessionContext) -> bool:
        """Nothing more runs in a transaction that failed (see `_execute`): its steps up to
        its COMMIT or ROLLBACK are skipped, and it was rolled back when it failed."""
        return ctx.failed is not None

    def registered(self, session: Session) -> None:
        ctx = context(session)
        event.listen(session, "after_commit", lambda _s: setattr(ctx, "commits", ctx.commits + 1))
        session.commit()

    def execute(self, step: Step, session: Session, before: Before | None) -> StepResult:
        """Run one step and describe what the session saw; expected errors become results.

        `before` runs first on the session's connection (the deadlock-timeout stagger),
        except for COMMIT/ROLLBACK, which must not open a transaction of their own. A
        step whose own code committed is marked: the trace cannot see that boundary.
        """
        ctx = context(session)
        commits = ctx.commits
        out = self._execute(step, session, before)
        if ctx.commits != commits and step.action not in (COMMIT, ROLLBACK):
            out = replace(out, commits_inside=True)
        return out

    def _execute(self, step: Step, session: Session, before: Before | None) -> StepResult:
        ctx = context(session)
        action = step.action
        if ctx.failed and action in (COMMIT, ROLLBACK):
            failed, ctx.failed = ctx.failed, None
            return StepResult(f"nothing to {action.lower()}: the transaction was rolled back"
                              f" after {failed}", skipped=True)
        if ctx.failed:  # as in PostgreSQL, nothing more runs in a transaction that failed
            return StepResult(f"skipped: the transaction was rolled back after {ctx.failed}",
                              skipped=True)
        try:
            if before is not None and action not in (COMMIT, ROLLBACK):
                before(session.connection())
            if action == COMMIT:
                session.commit()
                return StepResult("COMMIT", ended="commit")
            if action == ROLLBACK:
                session.rollback()
                return StepResult("ROLLBACK", ended="rollback")
            if isinstance(action, str):
                result = session.execute(text(action))
                if result.returns_rows:
                    rows = tuple(tuple(r) for r in result)
                    return StepResult(describe(rows), rows=rows)
                tag = action.split(None, 1)[0].upper()
                return StepResult(f"{tag} {result.rowcount}", rowcount=result.rowcount)
            value: Any = action(session)
            key = None if step.serial_key is None else (step.serial_key(value),)
            if isinstance(value, int) and not isinstance(value, bool):
                return StepResult(f"rowcount {value}", rowcount=value, key=key)
            return StepResult(describe(value), key=key)
        except Exception as exc:
            error = classify(exc)
            if error is None:
                raise
            with contextlib.suppress(Exception):
                session.rollback()
            _really_roll_back(session)
            ctx.last_error = error.code
            if action not in (COMMIT, ROLLBACK):  # a failed COMMIT already ended it
                ctx.failed = error.code
            return StepResult(error=error, ended="rollback")

    def end_transaction(self, session: Session) -> bool:
        if session.in_transaction():
            session.rollback()
            return True
        return False

    def reset(self, session: Session, restore: Before | None) -> None:
        ctx = context(session)
        session.expunge_all()
        session.info.clear()
        session.info[_CONTEXT] = ctx
        ctx.failed = ctx.last_error = None
        if restore is not None:
            restore(session.connection())
            session.commit()

    def setup(self, stage: Stage, scenario: Scenario) -> list[ResultSet]:
        if scenario.setup is not None:
            stage.write(scenario.setup)
        return []

    def session_setup(self, variant: Variant) -> Mapping[str, Any]:
        return {}

    session_teardown = session_setup

    def teardown(self, stage: Stage) -> list[ResultSet]:
        return []

    def notices(self, session: Session, *, finished: bool) -> list[Notice]:
        """Python scenarios trace what their steps return; the server's messages are not
        read."""
        return []

    def notifications(self, session: Session) -> list[Notification]:
        return []

    def serial_state(self, stage: Stage, tables: Mapping[str, tuple]) -> Mapping[str, tuple]:
        """The final state the serial check compares: the scenario's final-state rows."""
        return tables

    def replay_args(self, scenario: Scenario, variant: Variant) -> list[str]:
        return [scenario.name, "--case", variant.name]

    def replay_python(self, scenario: Scenario, variant: Variant) -> str:
        return f"Run({scenario.name!r}, case={variant.name!r}"


def attach(session: Session, ctx: SessionContext) -> None:
    session.info[_CONTEXT] = ctx


def _really_roll_back(session: Session) -> None:
    """SQLite: a COMMIT refused with SQLITE_BUSY leaves the transaction open, and its
    locks held, though SQLAlchemy has given up on it; end it, as the trace says."""
    dbapi = session.bind.connection.dbapi_connection
    if isinstance(dbapi, sqlite3.Connection) and dbapi.in_transaction:
        dbapi.rollback()


ORM = OrmDriver()
