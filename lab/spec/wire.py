"""A spec session's PostgreSQL connection, read the way isolationtester reads its own.

A step's SQL goes out as one Query message (libpq's PQsendQuery) and comes back through
libpq's non-blocking calls, so the notices and notifications the server sends beside the
results are parsed at the same moments as in isolationtester: a notice parsed before the
step's first result is ready is printed ahead of the step's line, a later one between its
result sets, and notifications after them.

While a step waits, the conductor's thread reads what has arrived (isolationtester's
PQconsumeInput after its lock check), under the lock the session's own thread reads with.
The server flushes a notice before it blocks, so whatever the step said before blocking is
in hand by the time the conductor reports the wait: the order stays the conductor's.
"""

from __future__ import annotations

import select
import threading

import psycopg
from psycopg import pq

from ..runner.trace import Notice, Notification

# how long the session's thread sleeps in poll() before looking again: the conductor's
# thread may have read the data it was waiting for (never decides an order)
POLL_S = 0.005


def _wait(fd: int, events: int) -> int:
    """The events that came on `fd` within POLL_S (poll(), so any fd number works)."""
    poller = select.poll()
    poller.register(fd, events)
    return next((got for _, got in poller.poll(POLL_S * 1000)), 0)


class Wire:
    def __init__(self, conn: psycopg.Connection, session: str | None):
        """`session`: the spec session whose notices and notifications to keep; None for
        a connection whose messages nobody prints (isolationtester's control connection)."""
        self._pgconn = conn.pgconn
        self._encoding = conn.info.encoding
        self._session = session
        self._lock = threading.RLock()  # libpq's handlers run inside calls made holding it
        self._notices: list[Notice] = []
        self._notifications: list[Notification] = []
        self._busy = False  # a step's results are being read
        self._ready = False  # its first result was ready: later notices go between tables
        self._tables = 0
        if session is not None:
            conn.add_notice_handler(self._on_notice)
            conn.add_notify_handler(lambda n: self._on_notify(n.channel, n.payload, n.pid))

    def run(self, sql: str) -> list[pq.PGresult]:
        """Send `sql` as one Query message; return every result once the server is done."""
        pgconn = self._pgconn
        with self._lock:
            pgconn.send_query(sql.encode(self._encoding))
            self._busy, self._ready, self._tables = True, False, 0
        results: list[pq.PGresult] = []
        try:
            self._flush()
            while not self._collect(results):
                _wait(pgconn.socket, select.POLLIN)
            with self._lock:  # as isolationtester: PQconsumeInput, then every PQnotifies
                pgconn.consume_input()
                self._take_notifications()
        finally:
            with self._lock:
                self._busy = False
        return results

    def _flush(self) -> None:
        """A non-blocking connection may not send a long query at once."""
        while True:
            with self._lock:
                if self._pgconn.flush() == 0:
                    return
            if _wait(self._pgconn.socket, select.POLLIN | select.POLLOUT) & select.POLLIN:
                with self._lock:
                    self._pgconn.consume_input()

    def _collect(self, results: list[pq.PGresult]) -> bool:
        """Take the results that are complete; True once the last one is in."""
        pgconn = self._pgconn
        with self._lock:
            pgconn.consume_input()
            while not pgconn.is_busy():
                self._ready = True
                res = pgconn.get_result()
                if res is None:
                    return True
                if res.status == pq.ExecStatus.COPY_IN:  # nothing to send: the server fails it
                    pgconn.put_copy_end(b"a spec step has no data to COPY FROM STDIN")
                elif res.status == pq.ExecStatus.COPY_OUT:  # read and dropped, not printed
                    while (size := pgconn.get_copy_data(1)[0]) > 0:
                        pass
                    if size == 0:
                        return False  # more to come
                else:
                    results.append(res)
                    self._tables += res.status == pq.ExecStatus.TUPLES_OK
        return False

    def notices(self, *, finished: bool) -> list[Notice]:
        """The notices received since last asked, oldest first, taken out.

        While the session's step has not finished, only those that came before its first
        result, having read what has arrived first; the others, as in isolationtester,
        go between the step's result sets once it has finished.
        """
        with self._lock:
            if self._busy:
                try:
                    self._pgconn.consume_input()
                    if not self._pgconn.is_busy():
                        self._ready = True
                except psycopg.Error:
                    pass  # the connection is gone: the session's own thread reports it
            taken: list[Notice] = []
            kept: list[Notice] = []
            for n in self._notices:
                (taken if finished or n.before_first_result else kept).append(n)
            self._notices = kept
            return taken

    def notifications(self) -> list[Notification]:
        """The notifications received since last asked (isolationtester prints them after
        a step's results, and only then)."""
        with self._lock:
            taken, self._notifications = self._notifications, []
            return taken

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        with self._lock:
            self._notices.append(Notice(
                self._session, diag.severity or "NOTICE", diag.message_primary or "",
                diag.message_detail, diag.message_hint,
                before_first_result=not (self._busy and self._ready),
                tables_before=self._tables if self._busy else 0))

    def _on_notify(self, channel: str, payload: str, pid: int) -> None:
        with self._lock:
            self._notifications.append(Notification(self._session, channel, payload, pid))

    def _take_notifications(self) -> None:
        while (n := self._pgconn.notifies()) is not None:
            if self._session is not None:
                self._on_notify(n.relname.decode(self._encoding),
                                n.extra.decode(self._encoding), n.be_pid)
