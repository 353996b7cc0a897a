"""Server housekeeping for the lab's PostgreSQL databases: reaching the server, the seeded
template per schema version, the RAM tablespace for run databases, and pruning what dead
lab processes left behind. Nothing here runs during a race."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

import psutil
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ..errors import UsageError
from . import seeded
from .urls import mask, scrub

RUN_PREFIX = "lab_run_"
BASE_PREFIX = "lab_base_"


def engine(url: URL, **kw):
    return create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5}, **kw)


def reach(url: URL, what: str):
    """Connect to the maintenance database or fail with one line that names the server."""
    admin = engine(url, isolation_level="AUTOCOMMIT")
    try:
        conn = admin.connect()
    except DBAPIError as exc:
        reason = scrub(str(exc.orig).strip().splitlines()[0], url)
        raise UsageError(f"cannot reach {what} at {mask(url)}: {reason}") from None
    return admin, conn


def ensure_base(conn: Connection, url: URL) -> str:
    """The seeded template database for this schema version, created once.

    It is built under a private name and renamed into place, so a concurrent run either
    sees no base or a complete one, and nobody is connected to it when it is copied.
    """
    base = f"{BASE_PREFIX}{seeded.fingerprint()}"
    if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(n)s",
                            {"n": base}).first():
        return base
    tmp = f"{base}_{os.getpid()}_{secrets.token_hex(3)}"
    conn.exec_driver_sql(f'CREATE DATABASE "{tmp}"')
    builder = engine(url.set(database=tmp))
    try:
        seeded.build(builder)
    finally:
        builder.dispose()
    try:
        conn.exec_driver_sql(f'ALTER DATABASE "{tmp}" RENAME TO "{base}"')
    except DBAPIError:  # another process finished first
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{tmp}"')
    return base


SCRATCH_ROOT = Path("/dev/shm")
SCRATCH_SPACE = "lab_scratch"
SCRATCH_MIN_FREE = 1 << 30  # a run database takes about 8 MB; leave room for many


def _free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def scratch_tablespace(conn: Connection, pgdata: Path) -> str | None:
    """A tablespace in RAM for the embedded server's run databases, or None.

    Run databases are scratch: created, raced on, dropped. On a disk, creating one costs
    0.2-0.3 s and every TRUNCATE of the explorer's reset about 1 ms per relation (file
    creation); on tmpfs, 20 ms and 0.2 ms. Only for the server the lab owns; anywhere the
    RAM disk is missing or refuses, the databases stay in the default tablespace.
    """
    if not SCRATCH_ROOT.is_dir() or _free_bytes(SCRATCH_ROOT) < SCRATCH_MIN_FREE:
        return None  # (a container's 64 MB /dev/shm would fill up)
    found = conn.exec_driver_sql(
        "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = %(n)s",
        {"n": SCRATCH_SPACE}).scalar()
    if found is not None and Path(found).is_dir():
        return SCRATCH_SPACE
    if found is not None:  # a reboot emptied the RAM disk: drop the husk, then recreate
        try:
            conn.exec_driver_sql(f"DROP TABLESPACE {SCRATCH_SPACE}")
        except DBAPIError:
            return None
    folder = _scratch_folder(pgdata.stat())
    if folder is None:
        return None
    try:
        conn.exec_driver_sql(f"CREATE TABLESPACE {SCRATCH_SPACE} LOCATION '{folder}'")
    except DBAPIError:
        with contextlib.suppress(OSError):
            folder.rmdir()
        return SCRATCH_SPACE if conn.exec_driver_sql(  # another process may have won
            "SELECT 1 FROM pg_tablespace WHERE spcname = %(n)s", {"n": SCRATCH_SPACE}
        ).scalar() else None
    return SCRATCH_SPACE


def _scratch_folder(server: os.stat_result) -> Path | None:
    """A new, empty folder on the RAM disk that only the server's user can enter.

    The parent is ours alone: made here, or checked to be a real directory we own (another
    user shares /dev/shm; a folder we did not make is never trusted). It lets others
    traverse but not list, so a server running as its own user reaches its folder.
    """
    me = os.geteuid()
    parent = SCRATCH_ROOT / f"race-lab-{me}"
    try:
        parent.mkdir(mode=0o700, exist_ok=True)
        st = parent.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != me:
            return None
        parent.chmod(0o700 if server.st_uid == me else 0o711)
        folder = Path(tempfile.mkdtemp(dir=parent))  # fresh: PostgreSQL wants it empty
        if server.st_uid != me:  # root starts the server as its own user (pgserver)
            os.chown(folder, server.st_uid, server.st_gid)
    except OSError:
        return None
    return folder


def prune_stale_run_databases(url: str) -> None:
    """Drop run databases left by lab processes that died (SIGKILLed notebook kernels)."""
    admin = engine(make_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        names = conn.exec_driver_sql(
            "SELECT datname FROM pg_database WHERE starts_with(datname, 'lab_run_')"
        ).scalars().all()
        for name in names:
            try:
                pid = int(name[len(RUN_PREFIX):].split("_")[0])
            except ValueError:
                continue
            if not psutil.pid_exists(pid):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        current = f"{BASE_PREFIX}{seeded.fingerprint()}"
        for name in conn.exec_driver_sql(
                "SELECT datname FROM pg_database WHERE starts_with(datname, 'lab_base_')"
                " AND datname <> %(c)s", {"c": current}).scalars().all():
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')  # an older schema
    admin.dispose()
