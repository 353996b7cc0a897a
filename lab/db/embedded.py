"""The embedded PostgreSQL: one private server per machine user, shared by that user's
lab processes, and stopped when none needs it.

It lives in the lab's private folder (``$LAB_HOME``, see `home`) and listens on a Unix
socket only; `pg_server` starts it safely.

Lifecycle: every lab process that uses the server holds a *lease* (a file named after its
pid). A small reaper process, started with the server, stops it once no live process has
held a lease for ``LAB_PG_IDLE_SECONDS`` (default 20). That covers kernels killed with
SIGKILL (nbval does this), whose atexit handlers never run. ``stop_if_unused()`` stops it
at once, which the test session does when it ends. Pid files are checked before they are
believed: a postmaster must run on our data directory as the expected user, a reaper must
be our reaper (its command line and its start time).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from ..errors import UsageError
from . import pg_server
from .home import home

IDLE_ENV = "LAB_PG_IDLE_SECONDS"
REAPER_MODULE = "lab.db.reaper"


def pgdata() -> Path:
    return home() / f"pg{pg_server.PG_VERSION}"


def idle_seconds() -> float:
    """$LAB_PG_IDLE_SECONDS, checked before anything starts (the reaper must not die on it)."""
    raw = os.environ.get(IDLE_ENV, "20")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise UsageError(f"{IDLE_ENV} must be a number of seconds, not {raw!r}")
    return value


def _leases() -> Path:
    return home() / "leases"


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise start, lease changes and stop across this user's processes."""
    with open(home() / "lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int, started: float | None) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and (
            started is None or abs(proc.create_time() - started) < 0.01
        )
    except psutil.Error:
        return False


def live_leases() -> list[int]:
    """Pids of processes that hold a lease; leases of dead processes are removed."""
    live = []
    folder = _leases()
    if not folder.exists():
        return live
    for lease in folder.iterdir():
        try:
            started = float(lease.read_text() or 0) or None
        except (OSError, ValueError):
            started = None
        if lease.name.isdigit() and _alive(int(lease.name), started):
            live.append(int(lease.name))
        else:
            lease.unlink(missing_ok=True)
    return sorted(live)


def postmaster_pid() -> int | None:
    """Our running server's pid, or None (see `pg_server.running`)."""
    return pg_server.running(pgdata())


_url: str | None = None


def acquire() -> str:
    """Start the server if needed, take this process's lease, and return its socket URL."""
    global _url
    if _url is not None and postmaster_pid() is not None:
        return _url
    idle = idle_seconds()
    with _locked():
        pg_server.start(pgdata())
        _leases().mkdir(mode=0o700, exist_ok=True)
        me = psutil.Process()
        (_leases() / str(me.pid)).write_text(repr(me.create_time()))
        _ensure_reaper(idle)
        _url = pg_server.url(pgdata())
    atexit.register(release)
    return _url


def release() -> None:
    """Drop this process's lease; the reaper stops the server once nobody holds one."""
    global _url
    _url = None
    with contextlib.suppress(OSError, UsageError):
        (_leases() / str(os.getpid())).unlink(missing_ok=True)


def stop_if_unused() -> bool:
    """Stop the server now unless another live process holds a lease. True if stopped."""
    release()
    with _locked():
        if live_leases():
            return False
        _stop()
        return True


def stop() -> None:
    """Stop the server whoever holds it (``python -m lab server stop``)."""
    release()
    with _locked():
        _stop()


def _stop() -> None:
    _kill_reaper()
    if (pid := postmaster_pid()) is not None:
        pg_server.stop(pgdata(), pid)


def _reaper_pidfile() -> Path:
    return home() / "reaper.pid"


def _reaper_command() -> list[str]:
    return ["-m", REAPER_MODULE, str(home())]


def reaper_pid() -> int | None:
    """The running reaper's pid, if reaper.pid names *our* reaper: a live process of this
    user, started when the file says, running ``python -m lab.db.reaper HOME``."""
    try:
        pid, started = _reaper_pidfile().read_text().split()
        proc = psutil.Process(int(pid))
        ours = (_alive(proc.pid, float(started)) and proc.uids().real == os.getuid()
                and proc.cmdline()[1:] == _reaper_command())
    except (OSError, ValueError, psutil.Error):
        return None
    return proc.pid if ours else None


def _ensure_reaper(idle: float) -> None:
    if reaper_pid() is not None:
        return
    with open(home() / "reaper.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, *_reaper_command()],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True,  # a Ctrl-C in the terminal must not kill it before the server
            env={**os.environ, IDLE_ENV: repr(idle)},
        )
    _reaper_pidfile().write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()!r}")


def _kill_reaper() -> None:
    pid = reaper_pid()
    _reaper_pidfile().unlink(missing_ok=True)
    if pid is not None and pid != os.getpid():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(timeout=5)


def reap_forever(idle_seconds: float, poll_seconds: float = 0.5) -> None:
    """The reaper's loop: stop the server after `idle_seconds` without a live lease."""
    idle_since: float | None = None
    while True:
        with _locked():
            if postmaster_pid() is None:
                _reaper_pidfile().unlink(missing_ok=True)
                return
            if live_leases():
                idle_since = None
            else:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_seconds:
                    _reaper_pidfile().unlink(missing_ok=True)
                    _stop()
                    return
        time.sleep(poll_seconds)  # ok-sleep: the reaper's housekeeping cadence; orders no race step


def leftovers() -> list[str]:
    """Processes of the embedded server still alive although no lab process needs them."""
    if live_leases():
        return []
    found = []
    if (pid := postmaster_pid()) is not None:
        found.append(f"embedded PostgreSQL (pid {pid}, data {pgdata()})")
    if (pid := reaper_pid()) is not None:
        found.append(f"lab reaper (pid {pid})")
    return found
