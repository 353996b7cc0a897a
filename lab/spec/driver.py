"""The session driver for spec files: SQL sent as psql (and isolationtester) sends it.

The session is in autocommit mode, so BEGIN, COMMIT and ROLLBACK in the text decide the
transaction, and an error leaves it aborted until the text ends it, exactly as in psql.
On PostgreSQL every connection of a spec file, the conductor's for its setup and
invariants included, logs in as the run's own role, which is no superuser (`superuser`
opts out: ``--superuser``).
Result sets are kept as the server's text output for psql-style tables. On PostgreSQL a
session's connection is read through a `Wire`, as isolationtester reads its own, so the
notices and notifications beside the results reach the trace in isolationtester's places.
Everything only spec files have (session setup and teardown, the global setup blocks and
teardown, the file's own permutation lines, its path) lives here, not on the shared
scenario types.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import Diagnostic
from sqlalchemy import Connection, DateTime, Integer
from sqlalchemy.orm import Session

from .. import models
from ..errors import RunFailed
from ..runner.driver import Before, context
from ..runner.outcome import ErrorKind, StepError
from ..runner.schedule import Entry
from ..runner.trace import Ended, Notice, Notification, ResultSet, StepResult
from .wire import Wire

_ENDS: dict[str, Ended] = {"COMMIT": "commit", "END": "commit", "ROLLBACK": "rollback",
                           "ABORT": "rollback"}
_WIRE = "lab.wire"  # a spec session's Wire, in its connection's info

_TABLE = re.compile(r'\b(?:from|into|update|join|table)\s+(?:only\s+)?"?([a-z_][\w$]*)',
                    re.IGNORECASE)


def mentioned_tables(sql: Iterable[str]) -> frozenset[str]:
    """The names a spec's SQL puts where a table goes; `serial_state` keeps real tables."""
    return frozenset(m.group(1) for text in sql for m in _TABLE.finditer(text))


def _volatile_columns() -> dict[str, tuple[str, ...]]:
    """Per lab table: its generated integer key and its timestamp columns."""
    out = {}
    for table in models.Base.metadata.tables.values():
        key = list(table.primary_key.columns)
        out[table.name] = tuple(
            c.name for c in table.columns
            if isinstance(c.type, DateTime)
            or (key == [c] and isinstance(c.type, Integer) and c.autoincrement in (True, "auto")))
    return out


_VOLATILE = _volatile_columns()


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in row)


_CHANGES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})  # tags whose count is rows affected


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
    mentioned: frozenset[str] = frozenset()  # names after FROM, INTO, UPDATE, JOIN, TABLE
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
        """PostgreSQL: read the session's connection as isolationtester does (see Wire)."""
        dbapi = session.bind.connection.dbapi_connection
        if isinstance(dbapi, psycopg.Connection):
            session.bind.info[_WIRE] = Wire(dbapi, context(session).name)

    def execute(self, step, session: Session, before: Before | None) -> StepResult:
        return execute_raw(step.action.text, session.bind, before)

    def skips(self, ctx) -> bool:
        """Never: a spec step's SQL goes to the server as written, failed transaction or not."""
        return False

    def end_transaction(self, session: Session) -> bool:
        """Roll back what a spec session's steps left open; True if there was something."""
        dbapi = session.bind.connection.dbapi_connection
        if isinstance(dbapi, sqlite3.Connection):
            is_open = dbapi.in_transaction
        else:  # (a connection the server closed has no transaction left: UNKNOWN)
            is_open = dbapi.info.transaction_status in _OPEN
        if is_open:
            dbapi.execute("ROLLBACK")
        return is_open

    def reset(self, session: Session, restore: Before | None) -> None:
        dbapi = session.bind.connection.dbapi_connection
        if restore is not None and not getattr(dbapi, "closed", False):  # (the server's
            restore(session.bind)  # transaction_timeout may have closed it)

    def notices(self, session: Session, *, finished: bool) -> list[Notice]:
        wire = session.bind.info.get(_WIRE)
        return wire.notices(finished=finished) if wire else []

    def notifications(self, session: Session) -> list[Notification]:
        """With the sender named when it is one of the run's sessions."""
        wire = session.bind.info.get(_WIRE)
        if wire is None:
            return []
        ctx = context(session)
        names = {c.backend_pid: c.name for c in (ctx, *ctx.peers.values())}
        return [replace(n, sender=names.get(n.sender_pid)) for n in wire.notifications()]

    def setup(self, stage, scenario) -> list[ResultSet]:
        """Each setup block on its own, outside a transaction, as isolationtester sends it
        (so VACUUM works there); keep what each returned last, as isolationtester prints it."""
        return stage.autocommit(lambda conn: self._blocks(conn, self.setup_blocks, "setup"))

    def session_setup(self, variant) -> Mapping[str, RawSQL]:
        return self.session_setups

    def session_teardown(self, variant) -> Mapping[str, RawSQL]:
        return self.session_teardowns

    def teardown(self, stage) -> list[ResultSet]:
        blocks = () if self.teardown_sql is None else (self.teardown_sql,)
        return stage.autocommit(lambda conn: self._blocks(conn, blocks, "teardown"))

    def serial_state(self, stage, tables) -> dict[str, tuple]:
        """Every table the spec touched, whole, rows sorted: the final state the serial
        check compares. Generated ids and timestamp columns of the lab's own tables are
        left out: they depend on timing, not on the order of the transactions."""
        names = sorted(self.mentioned & stage.table_names())
        read = stage.read({t: f'SELECT * FROM "{t}"' for t in names})
        return {t: tuple(sorted((tuple(v for k, v in row.items() if k not in _VOLATILE.get(t, ()))
                                 for row in rows), key=_sort_key))
                for t, rows in read.items()}

    @staticmethod
    def _blocks(conn: Connection, blocks: tuple[str, ...], what: str) -> list[ResultSet]:
        shown: list[ResultSet] = []
        for sql in blocks:
            out = execute_raw(sql, conn, None)
            if out.error is not None:
                raise RunFailed(f"the spec's {what} failed: {out.error.code} {out.error.message}")
            shown += [out.last] if out.last else []
        return shown

    def replay_args(self, scenario, variant) -> list[str]:
        return [self.source, "--superuser"] if self.superuser else [self.source]

    def replay_python(self, scenario, variant) -> str:
        if self.superuser:
            return f"Run(lab.spec.load_scenario({self.source!r}, superuser=True)"
        return f"Run({self.source!r}"


_OPEN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR,
         pq.TransactionStatus.ACTIVE)
_CAN_SET = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)


def execute_raw(sql: str, conn: Connection, before: Before | None) -> StepResult:
    dbapi = conn.connection.dbapi_connection
    if isinstance(dbapi, sqlite3.Connection):
        return _sqlite(sql, dbapi)
    if before is not None and dbapi.info.transaction_status in _CAN_SET:
        before(conn)  # (SET would fail in an aborted transaction or a closed session)
    idle = pq.TransactionStatus.IDLE
    was_open = dbapi.info.transaction_status != idle
    outside = not was_open  # no transaction before the step: autocommit, unless it BEGINs
    wire = conn.info.get(_WIRE) or Wire(dbapi, None)
    try:
        answers = wire.run(sql)
    except psycopg.Error as exc:  # the connection failed, or the server closed it
        message = exc.diag.message_primary or str(exc).splitlines()[0]
        gone = was_open and dbapi.closed  # (transaction_timeout): its transaction with it
        return StepResult(error=StepError(exc.sqlstate or type(exc).__name__, message,
                                          ErrorKind.DATABASE),
                          ended="rollback" if gone else None)
    results: list[ResultSet] = []
    last_end, last_rows, changed = None, False, None
    for res in answers:
        if res.status == pq.ExecStatus.FATAL_ERROR:  # the last result: the server stopped
            diag = Diagnostic(res, dbapi.info.encoding)
            # a failed COMMIT ended it; a FATAL (transaction_timeout...) closed the session
            now_idle = dbapi.info.transaction_status not in _OPEN
            return StepResult(error=StepError(diag.sqlstate or "", diag.message_primary or "",
                                              ErrorKind.DATABASE), results=tuple(results),
                              autocommit=outside and now_idle,
                              ended="rollback" if was_open and now_idle else None)
        tag = (res.command_status or b"").decode().split(" ", 1)[0]
        was_open |= tag == "BEGIN"
        last_end = _ENDS.get(tag, last_end)
        if tag in _CHANGES:
            changed = (changed or 0) + int(res.command_tuples or 0)
        last_rows = res.status == pq.ExecStatus.TUPLES_OK
        if last_rows:
            results.append(_result_set(res, dbapi.info.encoding))
    # ended only if a transaction was open and is not now: ROLLBACK TO SAVEPOINT has the
    # tag ROLLBACK but keeps it open; COMMIT PREPARED commits another, prepared one
    now_idle = dbapi.info.transaction_status == idle
    ended = last_end if was_open and now_idle else None
    return _result(results, ended, last_rows, changed, autocommit=not was_open and now_idle)


def _result_set(res: pq.PGresult, encoding: str) -> ResultSet:
    """Column names and values as the server's text, None for NULL."""
    def text(value: bytes | None) -> str | None:
        return None if value is None else value.decode(encoding)

    return ResultSet(tuple(text(res.fname(c)) for c in range(res.nfields)),
                     tuple(tuple(text(res.get_value(r, c)) for c in range(res.nfields))
                           for r in range(res.ntuples)))


def _sqlite(sql: str, dbapi: sqlite3.Connection) -> StepResult:
    """sqlite3 runs one statement per call; split the text where SQLite says one ends."""
    results: list[ResultSet] = []
    ended: Ended | None = None
    outside = not dbapi.in_transaction  # autocommit, unless the text BEGINs
    changed: int | None = None
    last_rows = False
    for statement in split_statements(sql):
        was_open = dbapi.in_transaction
        outside &= not statement.upper().startswith("BEGIN")
        try:
            cur = dbapi.execute(statement)
            last_rows = cur.description is not None
            if last_rows:
                rows = cur.fetchall()
                results.append(ResultSet(
                    tuple(d[0] for d in cur.description),
                    tuple(tuple(None if v is None else str(v) for v in r) for r in rows)))
            elif statement.split(None, 1)[0].upper() in _CHANGES:
                changed = (changed or 0) + cur.rowcount
        except sqlite3.Error as exc:  # (a refused COMMIT leaves the transaction open)
            return StepResult(error=StepError(
                getattr(exc, "sqlite_errorname", type(exc).__name__), str(exc),
                ErrorKind.DATABASE), autocommit=outside and not dbapi.in_transaction,
                ended="rollback" if was_open and not dbapi.in_transaction else None)
        if was_open and not dbapi.in_transaction:
            ended = _ENDS.get(statement.split(None, 1)[0].upper().rstrip(";"), "commit")
    return _result(results, ended, last_rows, changed,
                   autocommit=outside and ended is None and not dbapi.in_transaction)


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


def _result(results: list[ResultSet], ended: Ended | None, last_rows: bool,
            changed: int | None, *, autocommit: bool) -> StepResult:
    text = "; ".join(f"{len(r.rows)} row{'s' if len(r.rows) != 1 else ''}" for r in results)
    return StepResult(text, results=tuple(results), ended=ended, rowcount=changed,
                      autocommit=autocommit, last=results[-1] if last_rows else None)
