"""PostgreSQL's wait model: a separate autocommit connection asks the server who waits.

``pg_blocking_pids`` is always current, so a run has settled when every waiting session
is blocked by something, and no wait cycle is left for PostgreSQL's deadlock detector to
break. The first session to wait is made the deadlock victim by giving later waiters a
longer ``deadlock_timeout``.

Some waits hold no lock: a ``SERIALIZABLE READ ONLY DEFERRABLE`` transaction waiting for
a safe snapshot is not blocked in ``pg_blocking_pids``'s sense. Where ``pg_blocking_pids``
finds nothing, ``pg_safe_snapshot_blocking_pids`` names the transactions it waits for, so
such a wait is seen as isolationtester's ``pg_isolation_test_session_is_blocked`` sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import psycopg
from sqlalchemy import Connection

from .protocol import Lock

DEADLOCK_TIMEOUT_MS = 50
# the stagger only replaces values it set itself: a session's own setting (a spec file's
# SET deadlock_timeout) is left alone; compared in ms (current_setting says 1s for 1000ms)
_STAGGER_SQL = ("SELECT set_config('deadlock_timeout', '{want}ms', false) WHERE"
                " (SELECT setting::int FROM pg_settings WHERE name = 'deadlock_timeout')"
                " = ANY(%(ours)s)")
_LOCK_NAMES = {"RowShareLock": "FOR UPDATE/SHARE", "RowExclusiveLock": "write"}
# Where pg_blocking_pids finds nothing (the usual case of a step still running), the
# safe-snapshot blockers: a SERIALIZABLE READ ONLY DEFERRABLE transaction waits for those
# without a lock. isolationtester's pg_isolation_test_session_is_blocked asks the same two
# functions (and injection points, which the lab has none of), but would run
# pg_blocking_pids a second time, on a different instant, and needs the run's pids.
_BLOCKERS = ("SELECT pid, CASE WHEN blockers <> '{}' THEN blockers"
             " ELSE pg_safe_snapshot_blocking_pids(pid) END"
             " FROM unnest(%(pids)s::int[]) AS pid, pg_blocking_pids(pid) AS blockers")


class PostgresWaits:
    def __init__(self, db):
        raw = db.engine.raw_connection()
        self._db = db
        self._raw = raw
        self._conn: psycopg.Connection = raw.driver_connection
        self._conn.autocommit = True
        self._pids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._locks: dict[str, set[Lock]] = {}
        # each session's deadlock_timeout as the lab last set it (None: unknown, since a
        # ROLLBACK undoes a SET); the stagger changes it, a reset puts it back where needed
        self._deadlock_ms: dict[str, int | None] = {}
        self._bases = {DEADLOCK_TIMEOUT_MS}  # every stagger base used: its values are ours
        self._cycle: frozenset[str] = frozenset()

    def register(self, session: str, conn: Connection) -> int:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        self._pids[session], self._names[pid] = pid, session
        self._locks[session] = set()
        self._deadlock_ms[session] = DEADLOCK_TIMEOUT_MS
        return pid

    # -- who waits for whom ---------------------------------------------------------------
    def launching(self, session: str) -> None:
        pass

    def blockers(self, sessions: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """For each session, the sessions (or outside pids) its backend is waiting for now."""
        names = list(sessions)
        rows = self._conn.execute(
            _BLOCKERS, {"pids": [self._pids[n] for n in names]}, prepare=True).fetchall()
        found = {self._names[pid]: tuple(sorted(self._names.get(b, f"pid {b}") for b in by))
                 for pid, by in rows}
        return {n: found.get(n, ()) for n in names}

    def settled(self, sessions: list[str]) -> bool:
        """Every session blocked by something still held, and no cycle left to break."""
        graph = self.blockers(sessions)
        self._cycle = frozenset()
        if not all(graph.values()):
            return False  # someone was just released and is still running
        self._cycle = frozenset(s for s in sessions if _in_cycle(s, graph))
        return not self._cycle

    def cycle(self) -> frozenset[str]:
        return self._cycle

    def moved(self) -> None:
        """The conductor moved on; nothing to tell PostgreSQL, whose view is always current."""

    def released(self) -> bool:
        return False

    def queued_behind(self, session: str, blockers: tuple[str, ...],
                      waiting: Iterable[str]) -> bool:
        """Queued for a row another session of the run already waits for.

        Such a session waits for the row's *tuple* lock, which the first waiter holds.
        When the row is released both wake up and either may get it: the one order the
        conductor cannot fix (see docs/concepts/conductor.md).
        """
        return bool(set(blockers) & set(waiting)) and bool(self._conn.execute(
            "SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted AND locktype = 'tuple'",
            (self._pids[session],)).fetchone())

    # -- deadlock victims -------------------------------------------------------------------
    def stagger(self, session: str, rank: int, base_ms: int
                ) -> Callable[[Connection], None] | None:
        """Make the first session to wait the deadlock victim.

        PostgreSQL aborts the session whose deadlock timer fires first. Timers start when
        each session begins to wait, often a millisecond apart; a step of rank k (the
        conductor ranks each above every waiter) gets base x (1 + 2k), so jitter cannot
        reorder them. What a busy machine can still do is delay the cycle's last wait
        past the first waiter's timer: the conductor checks the victim (`cycle`).
        """
        want = base_ms * (1 + 2 * rank)
        if self._deadlock_ms[session] == want or not self._db.can_set_deadlock_timeout:
            return None
        self._deadlock_ms[session] = want
        self._bases.add(base_ms)
        return lambda conn: self._set(conn, want)

    def _set(self, conn: Connection, want: int) -> None:
        ours = [b * (1 + 2 * k) for b in sorted(self._bases) for k in range(len(self._pids) + 1)]
        self._db.set_deadlock_timeout(conn, _STAGGER_SQL.format(want=want), {"ours": ours})

    def ended(self, session: str, rolled_back: bool) -> None:
        """A transaction ended: its row locks are gone, and a ROLLBACK undid any SET."""
        self._locks[session] = set()
        if rolled_back:
            self._deadlock_ms[session] = None

    def restore(self, session: str) -> Callable[[Connection], None] | None:
        """Between runs on one stage: the default deadlock_timeout back, if it changed."""
        if self._deadlock_ms[session] == DEADLOCK_TIMEOUT_MS:
            return None
        self._deadlock_ms[session] = DEADLOCK_TIMEOUT_MS
        return lambda conn: self._db.set_deadlock_timeout(
            conn, f"SET deadlock_timeout = '{DEADLOCK_TIMEOUT_MS}ms'")

    # -- locks a step took ------------------------------------------------------------------
    def new_locks(self, session: str) -> list[Lock]:
        """Table-level marks of the row locks a session gained since last asked."""
        rows = self._conn.execute(
            "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE l.pid = %s AND l.granted AND c.relkind = 'r'"
            " AND l.mode IN ('RowShareLock', 'RowExclusiveLock')",
            (self._pids[session],), prepare=True,
        ).fetchall()
        held = {Lock(r, _LOCK_NAMES[m]) for r, m in rows}
        gained = sorted(held - self._locks[session], key=lambda lk: (lk.table, lk.mode))
        self._locks[session] = held
        return gained

    def forget(self, session: str) -> None:
        self._locks[session] = set()

    def close(self) -> None:
        self._raw.close()


def _in_cycle(start: str, graph: dict[str, tuple[str, ...]]) -> bool:
    seen, todo = set(), list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node == start:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False
