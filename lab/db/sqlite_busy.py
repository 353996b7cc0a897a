"""Make SQLite's lock waits visible without changing them.

SQLite waits for a lock inside its *busy handler*, invisible from outside (there is no
``pg_blocking_pids``). We install a busy handler of our own through ctypes on the real
sqlite3 handle. It keeps SQLite's semantics (retry until the busy timeout, then
SQLITE_BUSY, "database is locked"), and it tells the conductor two things:

* the session is waiting on the database lock (SQLite cannot say who holds it);
* whether it has retried since the conductor's last step (the *epoch*). A waiting session
  that retried after the latest step and is still refused is settled: nothing the run
  has done so far will release it. That is what keeps SQLite traces deterministic.

SQLite skips the busy handler when waiting could deadlock (a reader upgrading to writer
while another writer waits for readers) and fails at once; that shows up as an error,
which is exactly what SQLite does.
"""

from __future__ import annotations

import _sqlite3
import ctypes
import sqlite3
import threading
import time

from ..errors import LabError

_lib = ctypes.CDLL(_sqlite3.__file__)  # resolves symbols of the libsqlite3 that sqlite3 uses
_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_lib.sqlite3_busy_handler.argtypes = [ctypes.c_void_p, _HANDLER, ctypes.c_void_p]
_lib.sqlite3_busy_handler.restype = ctypes.c_int
_lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_lib.sqlite3_db_filename.restype = ctypes.c_char_p

RETRY_SECONDS = 0.005  # fallback re-check for locks held outside the run


class Epoch:
    """The conductor's step counter; busy handlers retry as soon as it moves."""

    def __init__(self) -> None:
        self.value = 0
        self.cond = threading.Condition()
        self.closing = False

    def bump(self) -> None:
        with self.cond:
            self.value += 1
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()


class BusyWatch:
    """One connection's observable busy handler."""

    def __init__(self, epoch: Epoch, timeout_s: float):
        self.epoch = epoch
        self.timeout_s = timeout_s
        self.waiting = False
        self.attempt_epoch = 0  # epoch at which the current attempt started
        self.refused_epoch = -1  # epoch of the latest attempt that was refused
        self._started = 0.0
        self._callback = _HANDLER(self._on_busy)  # keep a reference: ctypes does not

    def install(self, dbapi_conn: sqlite3.Connection, path: str) -> None:
        handle = ctypes.c_void_p.from_address(id(dbapi_conn) + object.__basicsize__).value
        name = _lib.sqlite3_db_filename(handle, b"main") if handle else None
        if not name or name.decode() != path:
            raise LabError("cannot observe SQLite lock waits on this Python build "
                           "(unexpected sqlite3 connection layout)")
        _lib.sqlite3_busy_handler(handle, self._callback, None)

    def launch(self) -> None:
        self.waiting = False
        self.attempt_epoch = self.epoch.value

    def settled(self) -> bool:
        return self.waiting and self.refused_epoch == self.epoch.value

    def _on_busy(self, _arg: int, count: int) -> int:
        with self.epoch.cond:
            if count == 0:
                self._started = time.monotonic()
            self.refused_epoch = self.attempt_epoch
            self.waiting = True
            self.epoch.cond.notify_all()
            if self.epoch.closing:
                return 0
            left = self.timeout_s - (time.monotonic() - self._started)
            if left <= 0:
                self.waiting = False
                return 0  # SQLite gives up: SQLITE_BUSY, "database is locked"
            if self.epoch.value == self.attempt_epoch:
                self.epoch.cond.wait(min(left, RETRY_SECONDS))
            self.attempt_epoch = self.epoch.value
            return 1
