"""The session driver for spec files: SQL sent as psql (and isolationtester) sends it.

The session is in autocommit mode, so BEGIN, COMMIT and ROLLBACK in the text decide the
transaction, and an error leaves it aborted until the text ends it, exactly as in psql.
On PostgreSQL every connection of a spec file, the conductor's for its setup and
invariants included, logs in as the run's own role, which is no superuser (`superuser`
opts out: ``--superuser``).
Result sets are kept as the server's text output for psql-style tables. Everything only
spec files have (session setup and teardown, the global teardown, the file's own
permutation lines, its path) lives here, not on the shared scenario types.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..errors import RunFailed
from ..runner.driver import Before
from ..runner.outcome import ErrorKind, StepError
from ..runner.schedule import Entry
from ..runner.trace import Ended, ResultSet, StepResult

_ENDS: dict[str, Ended] = {"COMMIT": "commit", "END": "commit", "ROLLBACK": "rollback",
                           "ABORT": "rollback"}


@dataclass(frozen=True)
class RawSQL:
    """A spec file's step: SQL sent as psql sends it, in autocommit, BEGIN and COMMIT included."""

    text: str


@dataclass(frozen=True, eq=False)
class SpecDriver:
    source: str  # the spec file's path, which replay lines name
    setup_blocks: tuple[str, ...] = ()
    teardown_sql: str | None = None
    session_setups: Mapping[str, RawSQL] = field(default_factory=dict)
    session_teardowns: Mapping[str, RawSQL] = field(default_factory=dict)
    listed: tuple[tuple[Entry, ...], ...] = ()  # the file's permutation lines
    superuser: bool = False  # --superuser: the SQL runs as a superuser (arbitrary code)

    free_order = True
    sends_sql_as_written = True
    ends_idle_first = False  # isolationtester awaits blocked steps, then ends transactions

    def connect(self, db: Any, isolation: str) -> Connection:
        return db.open_text_connection(isolation, superuser=self.superuser)

    def conductor_connection(self, db: Any) -> Connection:
        """The file's setup, teardown and invariants are its code too: same role."""
        return (db.engine if self.superuser else db.sandbox_engine).connect()

    def monitored(self, session: Session) -> Connection:
        return session.bind

    def registered(self, session: Session) -> None:
        pass

    def execute(self, step, session: Session, before: Before | None) -> StepResult:
        return execute_raw(step.action.text, session.bind, before)

    def end_transaction(self, session: Session) -> bool:
        """Roll back what a spec session's steps left open; True if there was something."""
        dbapi = session.bind.connection.dbapi_connection
        if isinstance(dbapi, sqlite3.Connection):
            is_open = dbapi.in_transaction
        else:
            is_open = dbapi.info.transaction_status != pq.TransactionStatus.IDLE
        if is_open:
            dbapi.execute("ROLLBACK")
        return is_open

    def reset(self, session: Session, restore: Before | None) -> None:
        if restore is not None:
            restore(session.bind)

    def setup(self, stage, scenario) -> list[ResultSet]:
        """Run the setup blocks; keep what each returned last, as isolationtester prints it."""
        if not self.setup_blocks:
            return []
        return stage.write(lambda s: self._blocks(s, self.setup_blocks, "setup"))

    def session_setup(self, variant) -> Mapping[str, RawSQL]:
        return self.session_setups

    def session_teardown(self, variant) -> Mapping[str, RawSQL]:
        return self.session_teardowns

    def teardown(self, stage) -> None:
        if self.teardown_sql is not None:
            stage.write(lambda s: self._blocks(s, (self.teardown_sql,), "teardown"))

    @staticmethod
    def _blocks(session: Session, blocks: tuple[str, ...], what: str) -> list[ResultSet]:
        shown: list[ResultSet] = []
        for sql in blocks:
            out = execute_raw(sql, session.connection(), None)
            if out.error is not None:
                raise RunFailed(f"the spec's {what} failed: {out.error.code} {out.error.message}")
            shown += out.results[-1:]
        return shown

    def replay_args(self, scenario, variant) -> list[str]:
        return [self.source, "--superuser"] if self.superuser else [self.source]

    def replay_python(self, scenario, variant) -> str:
        if self.superuser:
            return f"Run(lab.spec.load_scenario({self.source!r}, superuser=True)"
        return f"Run({self.source!r}"


def execute_raw(sql: str, conn: Connection, before: Before | None) -> StepResult:
    dbapi = conn.connection.dbapi_connection
    if isinstance(dbapi, sqlite3.Connection):
        return _sqlite(sql, dbapi)
    if before is not None and dbapi.info.transaction_status != pq.TransactionStatus.INERROR:
        before(conn)  # (SET would fail in an aborted transaction)
    results: list[ResultSet] = []
    was_open = dbapi.info.transaction_status != pq.TransactionStatus.IDLE
    last_end = None
    with dbapi.cursor() as cur:
        try:
            cur.execute(sql)
        except psycopg.Error as exc:
            return StepResult(error=StepError(
                exc.sqlstate or type(exc).__name__,
                exc.diag.message_primary or str(exc).splitlines()[0], ErrorKind.DATABASE))
        while True:
            tag = (cur.statusmessage or "").split(" ", 1)[0]
            was_open |= tag == "BEGIN"
            last_end = _ENDS.get(tag, last_end)
            if cur.description is not None:
                results.append(ResultSet(tuple(d.name for d in cur.description),
                                         tuple(tuple(r) for r in cur.fetchall())))
            if not cur.nextset():
                break
    # ended only if a transaction was open and is not now: ROLLBACK TO SAVEPOINT has the
    # tag ROLLBACK but keeps it open; COMMIT PREPARED commits another, prepared one
    ended = last_end if was_open and dbapi.info.transaction_status == pq.TransactionStatus.IDLE \
        else None
    return _result(results, ended)


def _sqlite(sql: str, dbapi: sqlite3.Connection) -> StepResult:
    """sqlite3 runs one statement per call; split the text where SQLite says one ends."""
    results: list[ResultSet] = []
    ended: Ended | None = None
    for statement in split_statements(sql):
        was_open = dbapi.in_transaction
        try:
            cur = dbapi.execute(statement)
            if cur.description is not None:
                rows = cur.fetchall()
                results.append(ResultSet(
                    tuple(d[0] for d in cur.description),
                    tuple(tuple(None if v is None else str(v) for v in r) for r in rows)))
        except sqlite3.Error as exc:
            return StepResult(error=StepError(
                getattr(exc, "sqlite_errorname", type(exc).__name__), str(exc),
                ErrorKind.DATABASE))
        if was_open and not dbapi.in_transaction:
            ended = _ENDS.get(statement.split(None, 1)[0].upper().rstrip(";"), "commit")
    return _result(results, ended)


def split_statements(sql: str) -> list[str]:
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        while sqlite3.complete_statement(current):
            head, _, rest = current.partition(";")  # the shortest complete prefix
            while not sqlite3.complete_statement(head + ";"):
                more, _, rest = rest.partition(";")
                head += ";" + more
            statements.append(head.strip() + ";")
            current = rest
    if current.strip():
        statements.append(current.strip())
    return statements


def _result(results: list[ResultSet], ended: Ended | None) -> StepResult:
    text = "; ".join(f"{len(r.rows)} row{'s' if len(r.rows) != 1 else ''}" for r in results)
    return StepResult(text, results=tuple(results), ended=ended)
