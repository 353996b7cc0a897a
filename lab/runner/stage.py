"""The stage a run plays on: its database, its wait model, and one worker per session.

A single run builds a stage and tears it down. The explorer plays hundreds of
interleavings on one stage and *resets* it between them: creating a database costs
0.03-0.3 s and connecting a session a few ms, putting the seeded rows back a few ms.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.orm import Session

from ..db import RunDatabase, Target, WaitModel, open_run_database
from .driver import ORM, SessionContext, SessionDriver, attach
from .serial import Replayed
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
                 timeout: float, driver: SessionDriver = ORM, reusable: bool = False,
                 db: RunDatabase | None = None):
        """`driver`: how the sessions run their steps (Python scenario or spec file).

        `reusable`: keep a copy of the seeded rows so that `reset` can restore them.
        `db`: borrow a database already snapshotted (see `shared_database`); creating one
        costs about 0.03-0.3 s, so the explorer shares one across cases and levels.
        """
        self.target = target
        self.isolation = isolation
        self.timeout = timeout
        self.driver = driver
        self._admin: Connection | None = None
        self._tables: frozenset[str] | None = None
        self._control: Connection | None = None
        self.changed = threading.Condition()
        self.db: RunDatabase | None = None
        self.waits: WaitModel | None = None
        self.workers: dict[str, SessionWorker] = {}
        self.contexts: dict[str, SessionContext] = {}
        self.used = db is not None  # a borrowed database is reset before the first run
        self.replays: dict[tuple, Replayed] = {}  # serial replays played here, by order
        self._owns_db = db is None
        try:
            self.db = db or open_run_database(target)
            if reusable and db is None:
                self.db.snapshot()
            self.waits = self.db.waits()
            for name in sessions:
                worker = SessionWorker(name, self._opener(), self.changed, driver)
                self.workers[name] = worker
                worker.call(lambda s, n=name, w=worker: self._register(n, w, s), timeout)
            for name, ctx in self.contexts.items():  # for steps that act on another session
                ctx.peers = {n: c for n, c in self.contexts.items() if n != name}
        except BaseException:
            self.close()
            raise

    def _opener(self) -> Callable[[], Connection]:
        return lambda: self.driver.connect(self.db, self.isolation)

    def _register(self, name: str, worker: SessionWorker, session: Session) -> None:
        pid = self.waits.register(name, self.driver.monitored(session))
        self.contexts[name] = ctx = SessionContext(name, worker.connection, pid)
        attach(session, ctx)
        self.driver.registered(session)

    # -- the conductor's own connection: set-up, final state, teardown ------------------
    def _conn(self) -> Connection:
        if self._admin is None:
            self._admin = self.driver.conductor_connection(self.db)
        return self._admin

    def write(self, action: Callable[[Session], Any]) -> Any:
        """Run a scenario's setup or teardown in one committed transaction."""
        with Session(bind=self._conn()) as session:
            value = action(session)
            session.commit()
        return value

    def autocommit(self, action: Callable[[Connection], Any]) -> Any:
        """Run `action` on a connection in autocommit mode, where each statement batch
        commits on its own: a spec's setup and teardown blocks (isolationtester's control
        connection). Opened on first use, kept for the stage's runs."""
        if self._control is None:
            self._control = self.driver.conductor_connection(self.db).execution_options(
                isolation_level="AUTOCOMMIT")  # (a spec file's own role: see the driver)
        return action(self._control)

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

    def table_names(self) -> frozenset[str]:
        """The database's tables, once looked up (the serial check reads spec tables)."""
        if self._tables is None:
            self._tables = frozenset(inspect(self._conn()).get_table_names())
            self._conn().rollback()
        return self._tables

    def reset(self) -> None:
        """Seeded rows back, sessions as freshly connected: ready for the next run.

        A transaction still open (a replayed step that raised) is rolled back first, or
        its locks would hold up the reset."""
        for worker in self.workers.values():
            worker.call(self.driver.end_transaction, self.timeout)
        self.db.reset()
        for name, worker in self.workers.items():
            restore = self.waits.restore(name)
            worker.call(lambda s, r=restore: self.driver.reset(s, r), self.timeout)
            self.waits.forget(name)

    def close(self) -> None:
        """Release everything: threads, connections, the database. Idempotent."""
        for conn in (self._admin, self._control):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._admin = self._control = None
        workers, self.workers = self.workers, {}
        for worker in workers.values():
            worker.stop()
        if self.db is not None:
            self.db.release_waiters()
        if self.waits is not None:
            with contextlib.suppress(Exception):
                self.waits.close()
            self.waits = None
        db, self.db = self.db, None
        try:
            if db is not None and self._owns_db:
                db.close()  # PostgreSQL: DROP DATABASE ... WITH (FORCE) ends blocked sessions
        finally:
            for worker in workers.values():
                worker.thread.join(self.timeout)
            if db is not None and not self._owns_db:
                db.rearm_waiters()
