"""Faults while a run is in flight: Ctrl-C, a second Ctrl-C, SIGTERM, SIGKILL.

Each test starts ``python -m lab run`` on a spec whose step sleeps in the server, waits
until that step is running, sends the fault, and then checks that nothing is left: no run
database, role, backend or lock, and, past the idle time, no server and no reaper.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import psycopg
import pytest

from homes import assert_nothing_left, connect, env, lab, lease, private_home, until

SLEEPER = "session s\nstep sleep { SELECT pg_sleep(60); }\n"


@pytest.fixture(scope="module")
def home():
    with private_home() as folder:
        yield folder


@pytest.fixture
def sleeper(tmp_path):
    spec = tmp_path / "sleeper.spec"
    spec.write_text(SLEEPER)
    return spec


def _sleeping(home) -> list[int]:
    try:
        with connect(home) as conn:
            return [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE '%%pg_sleep(60)%%'"
                " AND datname LIKE 'lab_run_%%'").fetchall()]
    except (OSError, IndexError, psycopg.Error):  # (not started yet)
        return []


def _start(home, spec) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "lab", "run", str(spec), "--timeout", "90"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(home))
    until(lambda: _sleeping(home), 60, "the spec's pg_sleep never started")
    return proc


@pytest.mark.parametrize(("signals", "code", "said"), [
    ([signal.SIGINT], 130, "interrupted"),
    ([signal.SIGTERM], 143, "terminated"),
    ([signal.SIGINT, signal.SIGINT, signal.SIGINT], 130, "interrupted"),  # Ctrl-C, again, again
], ids=["ctrl-c", "sigterm", "ctrl-c-again"])
def test_an_interrupted_run_drops_its_database_and_says_so(home, sleeper, signals, code, said):
    proc = _start(home, sleeper)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.02)  # ok-sleep: spaces the keystrokes of an impatient user; orders no step
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == f"{said}: connections closed, run database dropped"
    assert_nothing_left(home)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_parallel_exploration_leaves_no_worker_and_no_database(home, tmp_path,
                                                                              sig):
    """The signal reaches the explorer only (as `kill` does): it stops its workers, each
    ends its run, drops its database and exits."""
    spec = tmp_path / "sleepers.spec"
    spec.write_text("session a\nstep a1 { SELECT pg_sleep(60); }\n"
                    "session b\nstep b1 { SELECT pg_sleep(60); }\n")
    proc = subprocess.Popen([sys.executable, "-m", "lab", "explore", str(spec), "--workers",
                             "2", "--timeout", "90"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(home))
    until(lambda: _sleeping(home), 60, "no worker's pg_sleep ever started")
    workers = [p for p in psutil.Process(proc.pid).children() if "lab.parallel" in p.cmdline()]
    assert len(workers) == 2
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith(
        "interrupted" if sig == signal.SIGINT else "terminated")
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    assert_nothing_left(home)


def test_a_killed_runs_backend_ends_and_the_next_start_removes_its_database(home, sleeper):
    proc = _start(home, sleeper)
    with lease(home):  # the server stays up: the backend must end because its client did
        proc.kill()
        proc.communicate(timeout=60)
        until(lambda: not _sleeping(home), 15, "the killed run's backend still sleeps")
        with connect(home) as conn:
            left = conn.execute("SELECT count(*) FROM pg_database"
                                " WHERE datname LIKE 'lab_run_%%'").fetchone()[0]
        assert left == 1  # nobody could drop it: the next lab process does
        quick = sleeper.with_name("quick.spec")
        quick.write_text("session s\nstep one { SELECT 1; }\n")
        assert lab(home, "run", str(quick)).returncode == 0
    assert_nothing_left(home)


def test_the_report_says_dropped_only_for_what_was(monkeypatch):
    """A drop that failed is named, never reported as done."""
    import lab.db
    from lab.interrupts import Interrupts

    signals = Interrupts()
    signals.signal, signals.open_at_signal = signal.SIGTERM, ["lab_run_1_ab", "lab_run_1_cd"]
    monkeypatch.setattr(lab.db, "close_all", lambda: ["lab_run_1_cd"])
    assert signals.report() == ("terminated: connections closed, run database dropped; could"
                                " not drop lab_run_1_cd: the next lab process removes it")
    assert signals.exit_code == 143
