"""Private lab homes for tests that start, kill and inspect a server of their own."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg

IDLE_S = 2  # the reaper's idle time in these homes: the server stops soon after a test


def env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "LAB_HOME": str(home), "LAB_PG_IDLE_SECONDS": str(IDLE_S), **extra}


def lab(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True,
                          timeout=120, env=env(home, **extra))


@contextlib.contextmanager
def private_home(length: int = 0) -> Iterator[Path]:
    """A fresh LAB_HOME in the temp folder (which the server's user can enter, as root),
    its path padded to `length` characters; its server is stopped and the folder removed
    afterwards."""
    pad = max(0, length - len(tempfile.gettempdir()) - len("/lab-test-") - 8)
    home = Path(tempfile.mkdtemp(prefix="lab-test-" + "x" * pad))
    try:
        yield home
    finally:
        lab(home, "server", "stop")
        shutil.rmtree(home, ignore_errors=True)


def connect(home: Path) -> psycopg.Connection:
    """A superuser connection to the home's server, over its socket (no lease taken)."""
    lines = (home / "pg18" / "postmaster.pid").read_text().splitlines()
    return psycopg.connect(host=lines[4], port=lines[3], user="postgres", dbname="postgres",
                           autocommit=True)


@contextlib.contextmanager
def lease(home: Path) -> Iterator[None]:
    """Keep the home's server up while the test looks at it, as a lab process would."""
    me = psutil.Process()
    path = home / "leases" / str(me.pid)
    path.write_text(repr(me.create_time()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def until(check, seconds: float, what: str):
    """Poll `check()` until it returns something truthy; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"after {seconds:g} s: {what}")
        time.sleep(0.05)  # ok-sleep: polls another process's state; orders no race step
    return found


def leftovers(conn: psycopg.Connection) -> dict[str, list]:
    """What a dead or interrupted lab process may have left on its server."""
    q = lambda sql: [r[0] for r in conn.execute(sql).fetchall()]  # noqa: E731
    return {
        "databases": q("SELECT datname FROM pg_database WHERE datname LIKE 'lab_run_%'"),
        "roles": q("SELECT rolname FROM pg_roles WHERE rolname LIKE 'lab_run_%'"),
        "backends": q("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
                      " AND pid <> pg_backend_pid()"),
        "locks": q("SELECT DISTINCT pid FROM pg_locks WHERE pid <> pg_backend_pid()"),
    }


def assert_nothing_left(home: Path) -> None:
    """No run database, role, backend or lock; the home's lock free; then, once nobody
    holds a lease, no server and no reaper past the idle time."""
    with lease(home):
        with connect(home) as conn:
            left = leftovers(conn)
        assert left == {"databases": [], "roles": [], "backends": [], "locks": []}, left
        with open(home / "lock", "a+") as handle:  # nobody holds the home's lock
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    until(lambda: not _processes(home), IDLE_S + 15, f"processes of {home} still running:"
          f" {_processes(home)}")


def _processes(home: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if str(home) in line and ("lab.db.reaper" in line or "postgres" in line):
            found.append(line)
    return found
