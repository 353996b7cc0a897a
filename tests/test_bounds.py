"""Bounded work: what a command would play is counted first, and refused past the limit."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from lab.bounds import DEFAULT_LIMIT, MAX_STEPS, amount, orderings
from lab.errors import UsageError
from lab.explorer import explore


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True,
                          timeout=120)


def spec(path, sessions: int, steps: int, permutation: str = "") -> str:
    with open(path, "w") as f:
        for s in range(sessions):
            f.write(f"session s{s}\n")
            f.writelines(f"step s{s}_{i} {{ SELECT {i}; }}\n" for i in range(steps))
        f.write(permutation)
    return str(path)


def test_two_sessions_of_nine_steps_are_refused_at_once_with_the_count_and_the_flag(tmp_path):
    nine = spec(tmp_path / "nine.spec", 2, 9)
    assert orderings([9, 9]) == 48_620
    for command in ("run", "explore"):
        started = time.monotonic()
        out = lab(command, nine, "--db", "sqlite")
        assert out.returncode == 2 and out.stdout == "", out.stderr
        assert out.stderr.strip().splitlines() == [
            f"error: nine / spec has 48,620 orderings, more than the {DEFAULT_LIMIT:,} the lab"
            " plays unless told: --limit 48620 plays them all, --limit N the first N"
            " (limit=N in Python)"]
        print(f"{command}: refused in {time.monotonic() - started:.2f} s")  # no run happened


def test_limit_plays_the_first_n_in_run_and_explore(tmp_path):
    nine = spec(tmp_path / "nine.spec", 2, 9)
    out = lab("run", nine, "--db", "sqlite", "--limit", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("starting permutation:") == 3
    found = explore(nine, db="sqlite", limit=3)
    assert len(found.interleavings) == 3 and not found.complete
    with pytest.raises(UsageError, match="48,620 orderings"):
        explore(nine, db="sqlite")


def test_a_spec_with_more_permutation_lines_than_the_limit_is_refused(tmp_path):
    lines = "".join(f"permutation s0_0 s1_0\n" for _ in range(DEFAULT_LIMIT + 1))
    many = spec(tmp_path / "many.spec", 2, 1, lines)
    out = lab("run", many, "--db", "sqlite")
    assert out.returncode == 2 and "10,001 permutation lines" in out.stderr


def test_a_spec_of_more_than_max_steps_is_refused_while_parsing(tmp_path):
    long = spec(tmp_path / "long.spec", 1, MAX_STEPS + 1)
    out = lab("run", long, "--db", "sqlite")
    assert out.returncode == 2 and f"more than {MAX_STEPS:,} steps" in out.stderr, out.stderr


@pytest.mark.parametrize("shape", [(2, 150_000), (1, 300_000)], ids=["two-sessions", "one"])
def test_a_300k_step_spec_fails_clearly_in_little_memory(tmp_path, shape):
    """The probe's spec grew to 23.8 GB in 97 s. The time is printed, not asserted."""
    huge = spec(tmp_path / "huge.spec", *shape)
    started = time.monotonic()
    proc = psutil.Popen([sys.executable, "-m", "lab", "run", huge, "--db", "sqlite"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, proc.memory_info().rss)
        if time.monotonic() - started > 120:
            proc.kill()
        time.sleep(0.01)  # ok-sleep: samples the child's memory; orders no race step
    out, err = proc.communicate()
    print(f"{shape}: exit {proc.returncode} after {time.monotonic() - started:.2f} s,"
          f" peak RSS {peak / 2**20:.0f} MB")
    assert proc.returncode == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "larger than 4 MB" in err and peak < 500 * 2**20


def test_huge_counts_are_written_as_powers_of_ten():
    assert amount(48_620) == "48,620" and amount(orderings([5000, 5000])) == "about 10^3008"
