"""PostgreSQL runs: a database per run, sessions with a short deadlock_timeout, and a
monitor connection that *sees* lock waits through ``pg_blocking_pids``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import psutil
import psycopg
from psycopg.postgres import types as postgres_types
from psycopg.types.string import TextLoader
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ..errors import UsageError
from .. import models
from . import seeded
from .urls import mask, scrub

DEADLOCK_TIMEOUT_MS = 50
RUN_PREFIX = "lab_run_"
BASE_PREFIX = "lab_base_"

_LOCK_NAMES = {"RowShareLock": "FOR UPDATE/SHARE", "RowExclusiveLock": "write"}


def _engine(url: URL, **kw):
    return create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5}, **kw)


def _reach(url: URL, what: str):
    """Connect to the maintenance database or fail with one line that names the server."""
    admin = _engine(url, isolation_level="AUTOCOMMIT")
    try:
        conn = admin.connect()
    except DBAPIError as exc:
        reason = scrub(str(exc.orig).strip().splitlines()[0], url)
        raise UsageError(f"cannot reach {what} at {mask(url)}: {reason}") from None
    return admin, conn


def _ensure_base(conn: Connection, url: URL) -> str:
    """The seeded template database for this schema version, created once.

    It is built under a private name and renamed into place, so a concurrent run either
    sees no base or a complete one, and nobody is connected to it when it is copied.
    """
    base = f"{BASE_PREFIX}{seeded.fingerprint()}"
    if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(n)s",
                            {"n": base}).first():
        return base
    tmp = f"{base}_{os.getpid()}_{secrets.token_hex(3)}"
    conn.exec_driver_sql(f'CREATE DATABASE "{tmp}"')
    builder = _engine(url.set(database=tmp))
    try:
        seeded.build(builder)
    finally:
        builder.dispose()
    try:
        conn.exec_driver_sql(f'ALTER DATABASE "{tmp}" RENAME TO "{base}"')
    except DBAPIError:  # another process finished first
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{tmp}"')
    return base


SCRATCH_ROOT = Path("/dev/shm")
SCRATCH_SPACE = "lab_scratch"
SCRATCH_MIN_FREE = 1 << 30  # a run database takes about 8 MB; leave room for many


def _free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def _scratch_tablespace(conn: Connection, pgdata: Path) -> str | None:
    """A tablespace in RAM for the embedded server's run databases, or None.

    Run databases are scratch: created, raced on, dropped. On a disk, creating one costs
    0.2-0.3 s and every TRUNCATE of the explorer's reset about 1 ms per relation (file
    creation); on tmpfs, 20 ms and 0.2 ms. Only for the server the lab owns; anywhere the
    RAM disk is missing or refuses, the databases stay in the default tablespace.
    """
    if not SCRATCH_ROOT.is_dir() or _free_bytes(SCRATCH_ROOT) < SCRATCH_MIN_FREE:
        return None  # (a container's 64 MB /dev/shm would fill up)
    found = conn.exec_driver_sql(
        "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = %(n)s",
        {"n": SCRATCH_SPACE}).scalar()
    if found is not None and Path(found).is_dir():
        return SCRATCH_SPACE
    if found is not None:  # a reboot emptied the RAM disk: drop the husk, then recreate
        try:
            conn.exec_driver_sql(f"DROP TABLESPACE {SCRATCH_SPACE}")
        except DBAPIError:
            return None
    ident = conn.exec_driver_sql("SELECT system_identifier FROM pg_control_system()").scalar()
    folder = SCRATCH_ROOT / f"race-lab-{os.getuid()}" / str(ident)  # one per initdb
    try:
        folder.mkdir(parents=True, exist_ok=True)
        owner = pgdata.stat()
        if os.geteuid() == 0:  # the server runs as its own user (pgserver)
            os.chown(folder, owner.st_uid, owner.st_gid)
        folder.chmod(0o700)
        conn.exec_driver_sql(f"CREATE TABLESPACE {SCRATCH_SPACE} LOCATION '{folder}'")
    except (OSError, DBAPIError):
        return SCRATCH_SPACE if conn.exec_driver_sql(  # another process may have won
            "SELECT 1 FROM pg_tablespace WHERE spcname = %(n)s", {"n": SCRATCH_SPACE}
        ).scalar() else None
    return SCRATCH_SPACE


class PostgresRunDatabase:
    """One run's own database on a PostgreSQL server, dropped when the run closes."""

    kind = "postgresql"

    def __init__(self, url: URL, label: str, scratch: Path | None = None):
        """`scratch`: the embedded server's own data directory; run databases then go to a
        tablespace in RAM (see `_scratch_tablespace`)."""
        if not url.database:
            url = url.set(database="postgres")
        self._admin, conn = _reach(url, label)
        with conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one().split()[0]
            self.name = f"{RUN_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
            try:
                base = _ensure_base(conn, url)
                create = f'CREATE DATABASE "{self.name}" TEMPLATE "{base}"'
                space = _scratch_tablespace(conn, scratch) if scratch else None
                try:
                    conn.exec_driver_sql(create + (f' TABLESPACE "{space}"' if space else ""))
                except DBAPIError:
                    if not space:
                        raise
                    conn.exec_driver_sql(create)  # the RAM disk refused: stay on disk
            except DBAPIError as exc:
                raise UsageError(
                    f"cannot create a run database on {mask(url)}: {exc.orig}".splitlines()[0]
                ) from None
        self.label = f"{label} {version}"
        self.url = url.set(database=self.name)
        self.engine = _engine(self.url)
        self.notes: list[str] = []
        self.can_set_deadlock_timeout = True
        self._resetter = None

    # -- sessions -------------------------------------------------------------------
    def open_connection(self, isolation: str | None, *, raw_sql: bool = False) -> Connection:
        """A session's connection. `raw_sql`: autocommit, as psql runs a spec file's SQL;
        a plain BEGIN then starts a transaction at `isolation`, and values come back as
        PostgreSQL's own text."""
        conn = self.engine.connect()
        if raw_sql:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            _load_values_as_text(conn.connection.dbapi_connection)
            if isolation:
                conn.exec_driver_sql(f"SET default_transaction_isolation = '{isolation}'")
        elif isolation:
            conn = conn.execution_options(isolation_level=isolation.upper())
        self.set_deadlock_timeout(conn, DEADLOCK_TIMEOUT_MS)
        conn.commit()
        return conn

    def set_deadlock_timeout(self, conn: Connection, ms: int) -> None:
        """Short deadlock timeouts make a deadlock resolve in ~50 ms instead of 1 s.

        Needs superuser; on servers where the lab is not, the server's setting stays and
        the trace says so.
        """
        if not self.can_set_deadlock_timeout:
            return
        try:
            conn.exec_driver_sql(f"SET deadlock_timeout = '{ms}ms'")
        except DBAPIError:
            conn.rollback()
            self.can_set_deadlock_timeout = False
            self.notes.append("deadlock_timeout could not be set (needs superuser); "
                              "deadlocks resolve after the server's own setting")

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

    @staticmethod
    def backend_pid(conn: Connection) -> int:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def monitor(self) -> PostgresMonitor:
        return PostgresMonitor(self)

    def close(self) -> None:
        """Drop the run's database, terminating any session still connected to it."""
        if self._resetter is not None:
            self._resetter.close()
        self.engine.dispose()
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin.dispose()


class PostgresMonitor:
    """A separate autocommit connection that asks the server who waits for whom."""

    def __init__(self, db: PostgresRunDatabase):
        raw = db.engine.raw_connection()
        self._raw = raw
        self._conn: psycopg.Connection = raw.driver_connection
        self._conn.autocommit = True
        self._pids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._locks: dict[str, set[tuple[str, str]]] = {}

    def register(self, session: str, conn: Connection) -> None:
        pid = PostgresRunDatabase.backend_pid(conn)
        conn.info["backend_pid"] = pid
        self._pids[session], self._names[pid] = pid, session
        self._locks[session] = set()

    def launching(self, session: str) -> None:
        pass

    def blockers(self, sessions: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """For each session, the sessions (or outside pids) its backend is waiting for now."""
        names = list(sessions)
        rows = self._conn.execute(
            "SELECT pid, pg_blocking_pids(pid) FROM unnest(%s::int[]) AS pid",
            ([self._pids[n] for n in names],), prepare=True,
        ).fetchall()
        found = {self._names[pid]: tuple(sorted(self._names.get(b, f"pid {b}") for b in blocked))
                 for pid, blocked in rows}
        return {n: found.get(n, ()) for n in names}

    def queued_for_a_row(self, session: str) -> bool:
        """Waiting for a tuple lock: another session already queues for that row."""
        return bool(self._conn.execute(
            "SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted AND locktype = 'tuple'",
            (self._pids[session],)).fetchone())

    def new_locks(self, session: str) -> list[str]:
        """Table-level marks of the row locks a session gained since last asked."""
        rows = self._conn.execute(
            "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE l.pid = %s AND l.granted AND c.relkind = 'r'"
            " AND l.mode IN ('RowShareLock', 'RowExclusiveLock')",
            (self._pids[session],), prepare=True,
        ).fetchall()
        held = {(r, _LOCK_NAMES[m]) for r, m in rows}
        gained = sorted(held - self._locks[session])
        self._locks[session] = held
        return [f"{rel} ({mode})" for rel, mode in gained]

    def forget_locks(self, session: str) -> None:
        self._locks[session] = set()

    def close(self) -> None:
        self._raw.close()


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


def _load_values_as_text(conn: psycopg.Connection) -> None:
    """Every value as the server's text output, as psql and isolationtester print it."""
    for info in postgres_types:
        for oid in (info.oid, info.array_oid):
            if oid:
                conn.adapters.register_loader(oid, TextLoader)


def prune_stale_run_databases(url: str) -> None:
    """Drop run databases left by lab processes that died (SIGKILLed notebook kernels)."""
    admin = _engine(make_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        names = conn.exec_driver_sql(
            "SELECT datname FROM pg_database WHERE starts_with(datname, 'lab_run_')"
        ).scalars().all()
        for name in names:
            try:
                pid = int(name[len(RUN_PREFIX):].split("_")[0])
            except ValueError:
                continue
            if not psutil.pid_exists(pid):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        current = f"{BASE_PREFIX}{seeded.fingerprint()}"
        for name in conn.exec_driver_sql(
                "SELECT datname FROM pg_database WHERE starts_with(datname, 'lab_base_')"
                " AND datname <> %(c)s", {"c": current}).scalars().all():
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')  # an older schema
    admin.dispose()
