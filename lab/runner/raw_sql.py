"""Run a spec file's step the way psql (and isolationtester) does: the text as written.

The session is in autocommit mode, so BEGIN, COMMIT and ROLLBACK in the text decide the
transaction, and an error leaves it aborted until the text ends it, exactly as in psql.
Result sets are kept as the server's text output for psql-style tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
from psycopg import pq
from sqlalchemy import Connection

from .trace import Outcome, ResultSet

_ENDS = {"COMMIT": "commit", "END": "commit", "ROLLBACK": "rollback", "ABORT": "rollback"}


def execute_raw(sql: str, conn: Connection,
                before: Callable[[Connection], None] | None) -> Outcome:
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
            return Outcome(code=exc.sqlstate or type(exc).__name__,
                           error=exc.diag.message_primary or str(exc).splitlines()[0])
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
    return _outcome(results, ended)


def end_raw_transaction(session) -> bool:
    """Roll back what a spec session's steps left open; True if there was something."""
    dbapi = session.bind.connection.dbapi_connection
    if isinstance(dbapi, sqlite3.Connection):
        is_open = dbapi.in_transaction
    else:
        is_open = dbapi.info.transaction_status != pq.TransactionStatus.IDLE
    if is_open:
        dbapi.execute("ROLLBACK")
    return is_open


def _sqlite(sql: str, dbapi: sqlite3.Connection) -> Outcome:
    """sqlite3 runs one statement per call; split the text where SQLite says one ends."""
    results: list[ResultSet] = []
    ended = None
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
            return Outcome(code=getattr(exc, "sqlite_errorname", type(exc).__name__),
                           error=str(exc))
        if was_open and not dbapi.in_transaction:
            ended = _ENDS.get(statement.split(None, 1)[0].upper().rstrip(";"), "commit")
    return _outcome(results, ended)


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


def _outcome(results: list[ResultSet], ended: str | None) -> Outcome:
    text = "; ".join(f"{len(r.rows)} row{'s' if len(r.rows) != 1 else ''}" for r in results)
    return Outcome(text, results=tuple(results), ended_transaction=ended)
