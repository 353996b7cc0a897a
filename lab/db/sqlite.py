"""SQLite runs: a database file per run, transactions that begin where the scenario says,
and lock waits made visible by :mod:`lab.db.sqlite_busy`.

SQLite keeps its real behaviour here. It has no row locks and SQLAlchemy drops
``FOR UPDATE`` when compiling for it; the lab does not pretend otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

import psutil
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.pool import NullPool

from .. import models
from . import seeded
from .home import home
from .sqlite_busy import BusyWatch, Epoch

BUSY_TIMEOUT_S = 1.0
HOLDER_UNKNOWN = "the database lock"


def _runs_dir() -> Path:
    folder = home() / "sqlite"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _base_file() -> Path:
    """The seeded base file for this schema version, built once and renamed into place."""
    base = _runs_dir() / f"base-{seeded.fingerprint()}.db"
    if not base.exists():
        tmp = base.with_name(f"{base.name}.{os.getpid()}.tmp")
        engine = create_engine(f"sqlite:///{tmp}", poolclass=NullPool)
        try:
            seeded.build(engine)
        finally:
            engine.dispose()
        os.replace(tmp, base)
    return base


def prune_stale_run_files() -> None:
    """Remove run folders whose lab process died without cleaning up."""
    for folder in _runs_dir().iterdir():
        if folder.is_file():
            if folder.name.startswith("base-") and seeded.fingerprint() not in folder.name:
                folder.unlink(missing_ok=True)  # a base of an older schema
            continue
        try:
            pid = int(folder.name.split("-")[0])
        except ValueError:
            continue
        if not psutil.pid_exists(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _begin(conn: Connection) -> None:
    """Emit BEGIN ourselves (SQLAlchemy's recipe); IMMEDIATE when a service asked to write."""
    mode = conn.info.pop("sqlite_begin", None) or conn.get_execution_options().get(
        "sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


class SqliteRunDatabase:
    kind = "sqlite"

    def __init__(self, journal_mode: str = "delete", busy_timeout_s: float = BUSY_TIMEOUT_S):
        self._dir = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=_runs_dir()))
        self.path = str(self._dir / "lab.db")
        self.name = self._dir.name
        self.closed = False
        self.journal_mode = journal_mode
        self.busy_timeout_s = busy_timeout_s
        self.label = f"SQLite {sqlite3.sqlite_version} ({journal_mode} journal)"
        self.epoch = Epoch()
        self._watches: dict[int, BusyWatch] = {}
        self.engine = create_engine(
            f"sqlite:///{self.path}", poolclass=NullPool,
            connect_args={"check_same_thread": False},
        )
        event.listen(self.engine, "connect", self._on_connect)
        event.listen(self.engine, "begin", _begin)
        self.sandbox_engine = self.engine  # a file has no roles
        shutil.copyfile(_base_file(), self.path)
        with contextlib.closing(sqlite3.connect(self.path)) as raw:  # outside any transaction
            raw.execute(f"PRAGMA journal_mode = {journal_mode}")

    def _on_connect(self, dbapi_conn: sqlite3.Connection, _record) -> None:
        # SQLAlchemy's documented recipe: let us emit BEGIN ourselves, so a transaction
        # starts where the scenario says instead of where pysqlite guesses.
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA foreign_keys = ON")
        watch = BusyWatch(self.epoch, self.busy_timeout_s)
        watch.install(dbapi_conn, self.path)
        self._watches[id(dbapi_conn)] = watch

    def open_connection(self, isolation: str) -> Connection:
        """SQLite always runs transactions serializably; `isolation` changes nothing."""
        return self.engine.connect()

    def open_text_connection(self, isolation: str, *, superuser: bool = False) -> Connection:
        """Spec-file SQL goes straight to sqlite3, which is in autocommit mode already.
        A file has no roles: `superuser` changes nothing."""
        return self.engine.connect()

    def run_notes(self, isolation: str, sends_sql_as_written: bool) -> list[str]:
        """What a reader of this run's trace must know about SQLite."""
        dropped = "a syntax error" if sends_sql_as_written else "dropped"
        notes = [f"SQLite locks the whole database, not rows; FOR UPDATE is {dropped}",
                 f"lock waits are seen through SQLite's busy handler (busy timeout"
                 f" {self.busy_timeout_s:g} s); SQLite cannot say which connection holds the lock"]
        if isolation != "serializable":
            notes.append(f"SQLite has no {isolation.upper()}: every SQLite transaction"
                         " is serializable")
        return notes

    # -- many runs on one database (the explorer) -----------------------------------------
    def snapshot(self) -> None:
        """Nothing to copy: the seeded base file is the snapshot."""

    def reset(self) -> None:
        """Put the seeded rows back from the base file, in one transaction (under 1 ms).

        The sessions keep their connections, so the file cannot simply be copied again.
        """
        with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as raw:
            raw.execute("ATTACH DATABASE ? AS seed", (str(_base_file()),))
            tables = [t for (t,) in raw.execute(
                "SELECT name FROM seed.sqlite_master WHERE type = 'table'")]
            order = [t.name for t in models.Base.metadata.sorted_tables if t.name in tables]
            raw.execute("BEGIN IMMEDIATE")
            for t in reversed(order):
                raw.execute(f'DELETE FROM main."{t}"')
            for t in order:
                raw.execute(f'INSERT INTO main."{t}" SELECT * FROM seed."{t}"')
            raw.execute("COMMIT")

    def watch_of(self, conn: Connection) -> BusyWatch:
        return self._watches[id(conn.connection.dbapi_connection)]

    def waits(self) -> SqliteWaits:
        return SqliteWaits(self)

    def release_waiters(self) -> None:
        """Blocked busy handlers give up at once (the stage is closing)."""
        self.epoch.close()

    def rearm_waiters(self) -> None:
        """The next stage on this database: busy handlers wait again."""
        self.epoch.closing = False

    def close(self) -> None:
        self.epoch.close()
        self.engine.dispose()
        shutil.rmtree(self._dir, ignore_errors=True)
        self.closed = True


class SqliteWaits:
    """SQLite's wait model: the busy handler tells who waits, never for whom.

    A waiter has settled when it retried after the conductor's latest move and was still
    refused; the conductor's moves bump the epoch, which wakes every busy handler.
    """

    def __init__(self, db: SqliteRunDatabase):
        self._db = db
        self._watches: dict[str, BusyWatch] = {}

    def register(self, session: str, conn: Connection) -> None:
        self._watches[session] = self._db.watch_of(conn)

    def launching(self, session: str) -> None:
        with self._db.epoch.cond:
            self._watches[session].launch()

    def blockers(self, sessions: Iterable[str]) -> dict[str, tuple[str, ...]]:
        with self._db.epoch.cond:
            return {s: (HOLDER_UNKNOWN,) if self._watches[s].waiting else () for s in sessions}

    def settled(self, sessions: list[str]) -> bool:
        with self._db.epoch.cond:
            return all(self._watches[s].settled() for s in sessions)

    def moved(self) -> None:
        self._db.epoch.bump()

    def released(self) -> bool:
        """A waiter finished and may have freed the lock another waits for. Those were
        refused before that, so each must retry once more before it counts as settled."""
        self._db.epoch.bump()
        return True

    def queued_behind(self, session: str, blockers: tuple[str, ...], waiting) -> bool:
        return False  # no row locks, so no queue for one

    def stagger(self, session: str, rank: int, base_ms: int) -> None:
        return None  # no deadlock detector to race: a busy wait times out instead

    def cycle(self) -> frozenset[str]:
        return frozenset()

    def ended(self, session: str, rolled_back: bool) -> None:
        pass

    def restore(self, session: str) -> None:
        return None

    def new_locks(self, session: str) -> list:
        return []  # SQLite does not expose the locks a connection holds

    def forget(self, session: str) -> None:
        pass

    def close(self) -> None:
        pass
