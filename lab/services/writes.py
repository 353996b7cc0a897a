"""Start a transaction as a writer, which SQLite needs and PostgreSQL does not.

On SQLite a transaction that first reads and then writes must upgrade its read lock,
and when another connection is writing, SQLite refuses the upgrade at once ("database is
locked") rather than risk a deadlock. ``BEGIN IMMEDIATE`` takes the write lock up front:
the second writer then *waits* (through the busy handler) instead of failing. It is the
closest thing SQLite has to ``SELECT ... FOR UPDATE``, and it locks the whole database.
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session

BEGIN_OPTION = "sqlite_begin"


def begin_write(session: Session) -> None:
    if session.in_transaction() or session.get_bind().dialect.name != "sqlite":
        return
    bind = session.get_bind()
    if isinstance(bind, Connection):  # a lab session: read once by the engine's begin hook
        bind.info[BEGIN_OPTION] = "IMMEDIATE"
        session.connection()
    else:
        session.connection(execution_options={BEGIN_OPTION: "IMMEDIATE"})
