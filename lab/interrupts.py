"""Ctrl-C and SIGTERM in ``python -m lab``: stop, clean up, and say what really happened.

The first signal raises KeyboardInterrupt, so every ``finally`` on the way out closes what
it opened: worker threads, connections, the run's database. It is raised only outside the
database drivers: a query cut off half-way leaves its connection mid-command, and closing
that one prints a traceback; so a signal that lands inside a driver is delivered again a
moment later. Signals that arrive once the clean-up runs are noted, not acted on:
interrupting the clean-up itself is what left run databases behind and printed a double
traceback from inside psycopg. SIGTERM (``kill``, a CI job's timeout) is handled the same
way. The report says a database was dropped only if it was; one that could not be is
removed by the next lab process (`pg_admin.tidy`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

NOTE = b"still cleaning up: closing connections and dropping the run database ...\n"
DRIVERS = (f"{os.sep}psycopg{os.sep}", f"{os.sep}sqlalchemy{os.sep}")
AGAIN_S = 0.02  # how soon a signal that landed inside a driver is delivered again


class Interrupts:
    def __init__(self) -> None:
        self.signal: int | None = None
        self.open_at_signal: list[str] = []  # the run databases open when it came
        self.left: list[str] = []  # those that could not be dropped
        self._previous: dict[int, object] = {}
        self._told = False

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        """Put the handlers back, except that after a signal a further Ctrl-C is ignored:
        the process is on its way out with that signal's code, and an impatient user's
        third keystroke must not kill it with -2 after the clean-up. SIGTERM is put back:
        a parent stopping a worker that is slow to go must still be able to."""
        for sig, handler in self._previous.items():
            late_keystroke = sig == signal.SIGINT and self.signal is not None
            signal.signal(sig, signal.SIG_IGN if late_keystroke else handler)

    def _handle(self, signum: int, frame) -> None:
        if self.signal is None and _inside_driver(frame):
            threading.Timer(AGAIN_S, os.kill, (os.getpid(), signum)).start()
            return
        if self.signal is None:
            self.signal = signum
            db = sys.modules.get("lab.db")
            self.open_at_signal = db.open_names() if db else []
            raise KeyboardInterrupt
        if not self._told:  # a second Ctrl-C: the clean-up goes on regardless
            self._told = True
            os.write(2, NOTE)

    def clean_up(self) -> None:
        """Drop whatever run database the way out did not (the signal may have come
        while one was being dropped)."""
        db = sys.modules.get("lab.db")
        self.left = db.close_all() if db else []

    def report(self) -> str:
        """Clean up, then one line: what was closed and dropped, or what was left."""
        self.clean_up()
        what = "terminated" if self.signal == signal.SIGTERM else "interrupted"
        dropped = [n for n in self.open_at_signal if n not in self.left]
        parts = []
        if dropped:
            parts.append("connections closed, run database dropped" if len(dropped) == 1
                         else f"connections closed, {len(dropped)} run databases dropped")
        if self.left:
            parts.append(f"could not drop {', '.join(self.left)}: the next lab process"
                         " removes it")
        return f"{what}: " + "; ".join(parts) if parts else what

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or signal.SIGINT)


def _inside_driver(frame) -> bool:
    while frame is not None:
        if any(d in frame.f_code.co_filename for d in DRIVERS):
            return True
        frame = frame.f_back
    return False


def quiet_stdout() -> None:
    """After a broken pipe: send stdout to /dev/null, so that the interpreter's last
    flush does not complain about the closed pipe on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
