"""The command line as a user meets it: traces, verdicts, and one-line errors (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def lab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_list_names_every_scenario_with_a_description():
    out = lab("list")
    assert out.returncode == 0
    assert "concurrent-edit" in out.stdout and "explicit-locking" in out.stdout


def test_concurrent_edit_shows_the_lost_update_and_the_40001():
    out = lab("run", "concurrent-edit")
    assert out.returncode == 0, out.stderr
    blocks = out.stdout.split("\n\n" + "concurrent-edit / ")
    rc = next(b for b in blocks if "whole-object-save / READ COMMITTED" in b)
    rr = next(b for b in blocks if "whole-object-save / REPEATABLE READ" in b)
    assert "ANOMALY: lost update" in rc and "notes=''" in rc.split("final state:")[1]
    assert "ERROR 40001: could not serialize access" in rr and "PREVENTED (by abort)" in rr


def test_explicit_locking_shows_b_waiting_for_a(tmp_path: Path):
    png = tmp_path / "t.png"
    out = lab("run", "explicit-locking", "--plot", str(png))
    assert out.returncode == 0, out.stderr
    assert "step b_lock [B]" in out.stdout and "<waiting for A ...>" in out.stdout
    assert "step b_lock [B]: <... completed>" in out.stdout
    assert "PREVENTED (by waiting)" in out.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("db", ["sqlite", "sqlite-wal"])
def test_both_scenarios_run_on_sqlite_and_say_what_sqlite_did(db):
    for name in ("concurrent-edit", "explicit-locking"):
        out = lab("run", name, "--db", db)
        assert out.returncode == 0, out.stderr
        assert "SQLite" in out.stdout and "FOR UPDATE is dropped" in out.stdout
        assert "database is locked" in out.stdout


def test_permutation_option_replays_another_order():
    out = lab("run", "explicit-locking", "--permutation", "a_lock a_save a_commit b_lock b_save b_commit")
    assert out.returncode == 0, out.stderr
    assert "waiting" not in out.stdout


PASSWORD = "s3cret-pw"  # a fake one: the tests check it is never printed
UNREACHABLE = "postgresql://lab:" + PASSWORD + "@127.0.0.1:9/x"

IN_QUERY = "postgresql://lab@127.0.0.1:9/x?password=" + PASSWORD
WITH_AT = "postgresql://lab:p@" + PASSWORD + "@127.0.0.1:9/x"  # an unescaped @ in it
SQLITE_RUN = ["run", "explicit-locking", "--db", "sqlite"]

# (arguments, what the one line says, environment)
BAD = [
    (["run", "no-such-race"], "unknown scenario 'no-such-race'"),
    (["run", "concurrent-edit", "--isolation", "dirty read"], "unknown isolation level"),
    (["run", "concurrent-edit", "--db", UNREACHABLE],
     "cannot reach PostgreSQL"),
    (["run", "concurrent-edit", "--db", "::bad::"], "malformed database URL"),
    (["run", "concurrent-edit", "--db", f"mysql://u:{PASSWORD}@h/x"], "unsupported database"),
    (["run", "concurrent-edit", "--permutation", "a_load nope"], "unknown step 'nope'"),
    (["run", "explicit-locking", "--permutation", "a_save a_lock"], "keep their order"),
    (["run", "concurrent-edit", "--case", "nope"], "no case 'nope'"),
    (["run", "concurrent-edit", "--plot", "/no/such/dir/t.png"], "folder does not exist"),
    (["frobnicate"], "invalid choice"),
    (["run", "concurrent-edit", "--permutation", ""], "the permutation is empty"),
    (["run", "concurrent-edit", "--db", IN_QUERY], "cannot reach PostgreSQL"),
    (["run", "concurrent-edit", "--db", WITH_AT], "cannot reach PostgreSQL"),
    (SQLITE_RUN, "cannot create the lab's folder /proc/lab", {"LAB_HOME": "/proc/lab"}),
    (SQLITE_RUN, "cannot create the lab's folder /sys/lab", {"LAB_HOME": "/sys/lab"}),
    (SQLITE_RUN, "is not a folder", {"LAB_HOME": "/etc/hostname"}),
    (SQLITE_RUN, "the lab's folder /tmp (LAB_HOME)", {"LAB_HOME": "/tmp"}),  # others write it
    (["server", "status"], "LAB_PG_IDLE_SECONDS must be a number of seconds, not 'abc'",
     {"LAB_PG_IDLE_SECONDS": "abc"}),
    (["run", "concurrent-edit"], "LAB_PG_IDLE_SECONDS must be a number of seconds, not '-1'",
     {"LAB_PG_IDLE_SECONDS": "-1"}),
    (["run", "concurrent-edit", "--limit", "0"], "--limit must be a positive number"),
    (["run", "concurrent-edit", "--superuser"], "--superuser is for spec files"),
    (["run", "workload:E1/X9"], "cannot read operation 'X9'"),
]


@pytest.mark.parametrize(("args", "message", "env"),
                         [(*case, {})[:3] for case in BAD])
def test_bad_input_is_one_line_and_exit_2(args, message, env):
    out = lab(*args, env=env)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert PASSWORD not in out.stderr and "Traceback" not in out.stderr


def test_a_closed_pipe_ends_the_listing_quietly():
    """`python -m lab list | head -1`: the reader went away; no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "lab", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the first line: every write meets a closed pipe
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141 and err == ""


def test_env_url_is_used_and_its_password_never_printed():
    out = lab("run", "explicit-locking",
              env={"LAB_DATABASE_URL": UNREACHABLE})
    assert out.returncode == 2 and PASSWORD not in out.stderr and "***" in out.stderr
