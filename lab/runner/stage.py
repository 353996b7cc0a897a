"""The stage a run plays on: its database, a monitor, and one connected worker per session.

A single run builds a stage and tears it down. The explorer plays hundreds of
interleavings on one stage and *resets* it between them: creating a database costs
0.2-0.3 s and connecting a session a few ms, putting the seeded rows back a few ms.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from ..db import RunDatabase, Target, open_run_database
from ..db.postgres import DEADLOCK_TIMEOUT_MS
from .worker import SessionWorker


@contextlib.contextmanager
def shared_database(target: Target) -> Iterator[RunDatabase]:
    """One snapshotted database that many stages borrow in turn, dropped at the end."""
    db = open_run_database(target)
    try:
        db.snapshot()
        yield db
    finally:
        db.close()


class Stage:
    def __init__(self, target: Target, sessions: Sequence[str], isolation: str, *,
                 timeout: float, raw_sql: bool = False, reusable: bool = False,
                 db: RunDatabase | None = None):
        """`raw_sql`: sessions run spec-file SQL in autocommit mode, as psql would.

        `reusable`: keep a copy of the seeded rows so that `reset` can restore them.
        `db`: borrow a database already snapshotted (see `shared_database`); creating one
        costs about 0.3 s, so the explorer shares one across cases and levels.
        """
        self.target = target
        self.isolation = isolation
        self.timeout = timeout
        self._admin: Connection | None = None
        self.raw_sql = raw_sql
        self.changed = threading.Condition()
        self.db: RunDatabase | None = None
        self.monitor = None
        self.workers: dict[str, SessionWorker] = {}
        self.used = db is not None  # a borrowed database is reset before the first run
        # each session's deadlock_timeout as set (None: unknown, a ROLLBACK undid a SET);
        # the conductor's stagger changes it, a reset puts it back only where needed
        self.deadlock_ms: dict[str, int | None] = dict.fromkeys(sessions, DEADLOCK_TIMEOUT_MS)
        self._owns_db = db is None
        try:
            self.db = db or open_run_database(target)
            if reusable and db is None:
                self.db.snapshot()
            self.monitor = self.db.monitor()
            for name in sessions:
                worker = SessionWorker(name, self._opener(), self.changed)
                self.workers[name] = worker
                worker.call(lambda s, n=name: self._register(n, s), timeout)
            for name, worker in self.workers.items():  # for steps that act on another session
                worker.session.info["peers"] = {
                    n: w.connection for n, w in self.workers.items() if n != name}
        except BaseException:
            self.close()
            raise

    def _opener(self):
        return lambda: self.db.open_connection(self.isolation, raw_sql=self.raw_sql)

    def _register(self, name: str, session: Session) -> None:
        self.monitor.register(name, session.bind if self.raw_sql else session.connection())
        if not self.raw_sql:
            session.commit()

    # -- the conductor's own connection: set-up, final state, teardown ------------------
    def _conn(self) -> Connection:
        if self._admin is None:
            self._admin = self.db.engine.connect()
        return self._admin

    def write(self, action: Callable[[Session], Any]) -> Any:
        """Run a scenario's setup or teardown in one committed transaction."""
        with Session(bind=self._conn()) as session:
            value = action(session)
            session.commit()
        return value

    def read(self, queries: str | Mapping[str, str]) -> dict[str, tuple[dict, ...]]:
        """The rows of the scenario's final-state queries, by label ("" for a single one)."""
        if isinstance(queries, str):
            queries = {"": queries}
        conn = self._conn()
        try:
            return {name: tuple(dict(r) for r in conn.execute(text(sql)).mappings())
                    for name, sql in queries.items()}
        finally:
            conn.rollback()

    def reset(self) -> None:
        """Seeded rows back, sessions as freshly connected: ready for the next run."""
        self.db.reset()
        for name, worker in self.workers.items():
            worker.call(lambda s, n=name: self._forget(n, s), self.timeout)
            self.monitor.forget_locks(name)

    def _forget(self, name: str, session: Session) -> None:
        peers = session.info.get("peers")
        session.expunge_all()
        session.info.clear()
        if peers is not None:
            session.info["peers"] = peers
        if self.db.kind == "postgresql" and self.deadlock_ms[name] != DEADLOCK_TIMEOUT_MS:
            conn = session.bind if self.raw_sql else session.connection()
            self.db.set_deadlock_timeout(conn, DEADLOCK_TIMEOUT_MS)
            if not self.raw_sql:
                session.commit()
            self.deadlock_ms[name] = DEADLOCK_TIMEOUT_MS

    def close(self) -> None:
        """Release everything: threads, connections, the database. Idempotent."""
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        workers, self.workers = self.workers, {}
        for worker in workers.values():
            worker.stop()
        if self.db is not None and self.db.kind == "sqlite":
            self.db.epoch.close()  # blocked busy handlers give up at once
        if self.monitor is not None:
            with contextlib.suppress(Exception):
                self.monitor.close()
            self.monitor = None
        db, self.db = self.db, None
        try:
            if db is not None and self._owns_db:
                db.close()  # PostgreSQL: DROP DATABASE ... WITH (FORCE) ends blocked sessions
        finally:
            for worker in workers.values():
                worker.thread.join(self.timeout)
            if db is not None and not self._owns_db and db.kind == "sqlite":
                db.epoch.closing = False  # the next stage's busy handlers wait again
