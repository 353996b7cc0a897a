"""A PostgreSQL run's own database: created from the seeded template, its sessions'
connections, the explorer's reset between interleavings, and its drop at the end.

Where the lab logs in as a superuser (the embedded server), each run database is owned
by a role of its own, with the same name, which is no superuser: spec files run as that
role (see `pg_admin.ensure_sandbox`), so their SQL cannot reach the server's files,
programs or settings, nor another run's database."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from .. import models
from ..errors import UsageError
from .pg_admin import (RUN_PREFIX, SANDBOX, engine, ensure_base, ensure_sandbox, reach,
                       scratch_tablespace)
from .pg_waits import DEADLOCK_TIMEOUT_MS, PostgresWaits
from .urls import mask


class PostgresRunDatabase:
    """One run's own database on a PostgreSQL server, dropped when the run closes."""

    kind = "postgresql"

    def __init__(self, url: URL, label: str, scratch: Path | None = None):
        """`scratch`: the embedded server's own data directory; run databases then go to a
        tablespace in RAM (see `pg_admin.scratch_tablespace`)."""
        if not url.database:
            url = url.set(database="postgres")
        self._admin, conn = reach(url, label)
        with conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one().split()[0]
            self.name = f"{RUN_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
            self.sandboxed = False
            try:
                self.sandboxed = ensure_sandbox(conn)
                base = ensure_base(conn, url)
                create = f'CREATE DATABASE "{self.name}" TEMPLATE "{base}"'
                if self.sandboxed:
                    conn.exec_driver_sql(f'CREATE ROLE "{self.name}" LOGIN IN ROLE {SANDBOX}')
                    create += f' OWNER "{self.name}"'
                space = scratch_tablespace(conn, scratch) if scratch else None
                try:
                    conn.exec_driver_sql(create + (f' TABLESPACE "{space}"' if space else ""))
                except DBAPIError:
                    if not space:
                        raise
                    conn.exec_driver_sql(create)  # the RAM disk refused: stay on disk
            except DBAPIError as exc:
                if self.sandboxed:
                    conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{self.name}"')
                raise UsageError(
                    f"cannot create a run database on {mask(url)}: {exc.orig}".splitlines()[0]
                ) from None
        self.label = f"{label} {version}"
        self.url = url.set(database=self.name)
        self.engine = engine(self.url)
        # spec files' SQL: the run's own role where there is one
        self.sandbox_engine = engine(self.url.set(username=self.name)) if self.sandboxed \
            else self.engine
        self.notes: list[str] = []
        self.closed = False
        self.can_set_deadlock_timeout = True
        self._resetter = None

    # -- sessions -------------------------------------------------------------------
    def open_connection(self, isolation: str) -> Connection:
        """A Python scenario session's connection, in transactions at `isolation`."""
        conn = self.engine.connect().execution_options(isolation_level=isolation.upper())
        return self._ready(conn)

    def open_text_connection(self, isolation: str, *, superuser: bool = False) -> Connection:
        """A spec session's connection: autocommit, as psql runs a spec file's SQL; a plain
        BEGIN starts a transaction at `isolation`. It logs in as the run's role unless
        `superuser` (--superuser). (The spec driver reads its values as PostgreSQL's own
        text, straight from libpq.)"""
        conn = (self.engine if superuser else self.sandbox_engine).connect()
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(f"SET default_transaction_isolation = '{isolation}'")
        return self._ready(conn)

    def _ready(self, conn: Connection) -> Connection:
        self.set_deadlock_timeout(conn, f"SET deadlock_timeout = '{DEADLOCK_TIMEOUT_MS}ms'")
        conn.commit()
        return conn

    def set_deadlock_timeout(self, conn: Connection, sql: str, params=None) -> None:
        """Short deadlock timeouts make a deadlock resolve in milliseconds instead of 1 s.

        Needs superuser, or the grant the sandbox role has; on servers where the lab has
        neither, the server's setting stays and the trace says so.
        """
        if not self.can_set_deadlock_timeout:
            return
        try:
            conn.exec_driver_sql(sql, params)
        except DBAPIError:
            conn.rollback()
            self.can_set_deadlock_timeout = False
            self.notes.append("deadlock_timeout could not be set (needs superuser); "
                              "deadlocks resolve after the server's own setting")

    def run_notes(self, isolation: str, sends_sql_as_written: bool) -> list[str]:
        return list(self.notes)

    # -- many runs on one database (the explorer) -----------------------------------------
    def snapshot(self) -> None:
        """Copy the seeded rows and sequence positions aside, into schema lab_seed."""
        with self.engine.begin() as conn:
            tables = conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").scalars().all()
            order = [t.name for t in models.Base.metadata.sorted_tables if t.name in tables]
            order += sorted(set(tables) - set(order))
            conn.exec_driver_sql("CREATE SCHEMA lab_seed")
            for t in order:
                conn.exec_driver_sql(f'CREATE TABLE lab_seed."{t}" AS TABLE public."{t}"')
            seqs = conn.exec_driver_sql(
                "SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences"
                " WHERE schemaname = 'public'").all()
            self._counts = {t: conn.exec_driver_sql(f'SELECT count(*) FROM public."{t}"')
                            .scalar_one() for t in order}
            self._dependents = _dependents(conn, order)
        self._seed = order
        self._setvals = [f"SELECT setval('{s}', {v or 1}, {v is not None})" for s, v in seqs]
        self._resetter = self.engine.raw_connection()
        self._resetter.driver_connection.autocommit = True
        self._xids: dict[str, str] = {}
        self._restore(order)  # so that every seeded row carries a known xmin

    def reset(self) -> None:
        """Put the seeded rows back: only tables a run changed, with what references them.

        A table is unchanged when it has its seeded row count and every row is still the
        version the last reset wrote (its xmin). Changed tables are TRUNCATEd, not
        DELETEd from: a fresh heap gives every run the same physical row order, so a scan
        without ORDER BY, or SKIP LOCKED, meets the rows in the same order every time.
        """
        probe = " UNION ALL ".join(
            f"SELECT '{t}', count(*) <> {self._counts[t]} OR bool_or(xmin::text <> '{self._xids[t]}')"
            f' FROM public."{t}"' for t in self._seed)
        conn = self._resetter.driver_connection
        changed = {t for t, dirty in conn.execute(probe).fetchall() if dirty}
        for t in list(changed):
            changed |= self._dependents.get(t, set())
        self._restore([t for t in self._seed if t in changed])

    def _restore(self, tables: list[str]) -> None:
        sql = ["BEGIN", "SET LOCAL synchronous_commit = off"]  # a lab's scratch data
        if tables:
            sql += ["TRUNCATE " + ", ".join(f'public."{t}"' for t in tables)]
            sql += [f'INSERT INTO public."{t}" SELECT * FROM lab_seed."{t}"' for t in tables]
        sql += self._setvals + ["SELECT pg_current_xact_id()::xid::text", "COMMIT"]
        with self._resetter.driver_connection.cursor() as cur:
            cur.execute("; ".join(sql))
            while cur.description is None or cur.description[0].name != "pg_current_xact_id":
                cur.nextset()
            xid = cur.fetchone()[0]
        self._xids.update(dict.fromkeys(tables, xid))

    def waits(self) -> PostgresWaits:
        return PostgresWaits(self)

    def release_waiters(self) -> None:
        """Nothing to do: dropping the database WITH (FORCE) ends blocked sessions."""

    def rearm_waiters(self) -> None:
        pass

    def close(self) -> None:
        """Drop the run's database, terminating any session still connected to it."""
        if self._resetter is not None:
            self._resetter.close()
        self.engine.dispose()
        self.sandbox_engine.dispose()
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            if self.sandboxed:
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{self.name}"')
        self._admin.dispose()
        self.closed = True


def _dependents(conn, tables: list[str]) -> dict[str, set[str]]:
    """For each table, every table whose foreign keys reach it (TRUNCATE needs them too)."""
    edges = conn.exec_driver_sql(
        "SELECT confrelid::regclass::text, conrelid::regclass::text FROM pg_constraint"
        " WHERE contype = 'f' AND connamespace = 'public'::regnamespace").all()
    found: dict[str, set[str]] = {t: set() for t in tables}
    changed = True
    while changed:
        changed = False
        for parent, child in edges:
            parent, child = parent.strip('"'), child.strip('"')
            for t, deps in found.items():
                if (parent == t or parent in deps) and child not in deps:
                    deps.add(child)
                    changed = True
    return found
