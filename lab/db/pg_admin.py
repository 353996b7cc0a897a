"""Server housekeeping for the lab's PostgreSQL databases: reaching the server, the seeded
template per schema version, the sandbox role spec files run as, the RAM tablespace for
run databases, and pruning what dead lab processes left behind. Nothing here runs during
a race."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

import psutil
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ..errors import UsageError
from . import seeded
from .home import private_dir, server_group
from .urls import mask, scrub

RUN_PREFIX = "lab_run_"
BASE_PREFIX = "lab_base_"
BASE_REVISION = "s"  # bumped when the base's build changes (s: grants to the sandbox)
SANDBOX = "lab_sandbox"
# what isolation specs set or do that PostgreSQL reserves to superusers by default
SANDBOX_GRANTS = (
    "GRANT SET ON PARAMETER deadlock_timeout, lock_timeout, statement_timeout TO {role}",
    "GRANT pg_signal_backend TO {role}",
)


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
    base = base_name()
    if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(n)s",
                            {"n": base}).first():
        return base
    tmp = f"{base}_{os.getpid()}_{secrets.token_hex(3)}"
    conn.exec_driver_sql(f'CREATE DATABASE "{tmp}"')
    builder = engine(url.set(database=tmp))
    try:
        seeded.build(builder)
        if has_sandbox(conn):  # spec sessions may change the seeded rows, not the tables
            with builder.begin() as b:
                b.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {SANDBOX};"
                                  f" GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {SANDBOX}")
    finally:
        builder.dispose()
    try:
        conn.exec_driver_sql(f'ALTER DATABASE "{tmp}" RENAME TO "{base}"')
    except DBAPIError:  # another process finished first
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{tmp}"')
    return base


def base_name() -> str:
    return f"{BASE_PREFIX}{seeded.fingerprint()}{BASE_REVISION}"


def is_superuser(conn: Connection) -> bool:
    return conn.exec_driver_sql("SHOW is_superuser").scalar() == "on"


def has_sandbox(conn: Connection) -> bool:
    return bool(conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(n)s",
                                     {"n": SANDBOX}).first())


def ensure_sandbox(conn: Connection) -> bool:
    """The group role of spec sessions: no superuser, but what isolation specs need.

    Created once per server, with its grants in the same transaction, so that another
    process sees it whole or not at all. False where the lab is not a superuser: its own
    role is then what spec sessions run as (the server already limits it).
    """
    if not is_superuser(conn):
        return False
    if has_sandbox(conn):
        return True
    grants = "; ".join(g.format(role=SANDBOX) for g in SANDBOX_GRANTS)
    try:
        conn.exec_driver_sql(f"CREATE ROLE {SANDBOX} NOLOGIN; {grants}")
    except DBAPIError:  # another process created it first
        if not has_sandbox(conn):
            raise
    return True


def reset_configuration(conn: Connection) -> None:
    """Undo what a run with --superuser may have changed for later runs: ALTER SYSTEM
    (also emptied before every start), and settings stored per role or database."""
    if conn.exec_driver_sql("SELECT count(*) FROM pg_file_settings"
                            " WHERE sourcefile LIKE '%%postgresql.auto.conf'").scalar():
        conn.exec_driver_sql("ALTER SYSTEM RESET ALL")
        conn.exec_driver_sql("SELECT pg_reload_conf()")
    for role, db in conn.exec_driver_sql(
            "SELECT r.rolname, d.datname FROM pg_db_role_setting s"
            " LEFT JOIN pg_roles r ON r.oid = s.setrole"
            " LEFT JOIN pg_database d ON d.oid = s.setdatabase").all():
        if (role or "").startswith(RUN_PREFIX) or (db or "").startswith(RUN_PREFIX):
            continue  # a run's own role and database: its business, and gone with it
        if role is None and db is not None:
            conn.exec_driver_sql(f'ALTER DATABASE "{db}" RESET ALL')
        else:
            who = f'"{role}"' if role else "ALL"
            conn.exec_driver_sql(f"ALTER ROLE {who}"
                                 + (f' IN DATABASE "{db}"' if db else "") + " RESET ALL")


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
    """A new, empty folder on the RAM disk that only the server's user can enter, in a
    parent that is ours alone (`private_dir`: another user shares /dev/shm)."""
    me = os.geteuid()
    try:
        parent = private_dir(SCRATCH_ROOT / f"race-lab-{me}", what="the lab's RAM folder",
                             group=server_group() if server.st_uid != me else None)
        folder = Path(tempfile.mkdtemp(dir=parent))  # fresh: PostgreSQL wants it empty
        if server.st_uid != me:  # root starts the server as its own user (pgserver)
            os.chown(folder, server.st_uid, server.st_gid)
    except (UsageError, OSError):
        return None
    return folder


def tidy(url: str) -> None:
    """Once per lab process: drop what dead lab processes left behind (run databases,
    their backends and roles; bases of older schemas), and undo persistent settings."""
    admin = engine(make_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        reset_configuration(conn)
        for name in _names(conn, "pg_database", "datname", RUN_PREFIX):
            if _dead(name):  # FORCE: its backends go too
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for name in _names(conn, "pg_roles", "rolname", RUN_PREFIX):
            if _dead(name):
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        for name in _names(conn, "pg_database", "datname", BASE_PREFIX):
            if name != base_name():  # an older schema
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


def _names(conn: Connection, catalog: str, column: str, prefix: str) -> list[str]:
    return conn.exec_driver_sql(f"SELECT {column} FROM {catalog} WHERE starts_with({column},"
                                " %(p)s)", {"p": prefix}).scalars().all()


def _dead(run_name: str) -> bool:
    """lab_run_<pid>_<hex>: True when the lab process that made it is gone."""
    try:
        return not psutil.pid_exists(int(run_name[len(RUN_PREFIX):].split("_")[0]))
    except ValueError:
        return False
