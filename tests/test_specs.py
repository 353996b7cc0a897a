"""The spec files in specs/: their isolationtester output, and what PostgreSQL really did.

Each ``specs/expected/NAME[.VARIANT...].out`` is the exact stdout of ``python -m lab run
specs/NAME.spec`` (each VARIANT adds options: an isolation level such as ``serializable``,
``sqlite`` for ``--db sqlite``, ``serial`` for ``--serial-check``). The output comparisons catch any change in what the lab prints; the
semantic tests below say, in words, which behaviour each file must show, and play the
permutations through the Python API so that they check the runner's own record (who
waited for whom, which step failed with which SQLSTATE, who committed, the verdict).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from lab import cli
from lab.db import resolve
from lab.explorer import explore
from lab.runner import Outcome, Run, RunResult
from lab.spec.parser import load
from lab.spec.scenario import to_scenario

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
EXPECTED = SPECS / "expected"

# each dot-separated part of an expected file's name between NAME and .out -> the extra
# `lab run` options it stands for
VARIANTS = {
    "read-committed": ["--isolation", "read committed"],
    "repeatable-read": ["--isolation", "repeatable read"],
    "serializable": ["--isolation", "serializable"],
    "sqlite": ["--db", "sqlite"],
    "serial": ["--serial-check"],
}


def expected_files() -> list[Path]:
    return sorted(EXPECTED.glob("*.out"))


def command(out: Path) -> tuple[Path, list[str]]:
    """The spec and the `lab run` options an expected file was made with."""
    name, *variants = out.name[: -len(".out")].split(".")
    options: list[str] = []
    for variant in variants:
        assert variant in VARIANTS, f"{out.name}: unknown variant {variant!r}; known: {list(VARIANTS)}"
        options += VARIANTS[variant]
    return SPECS / f"{name}.spec", options


def run_command(spec: Path, options: list[str]) -> str:
    return " ".join(["python -m lab run", f"specs/{spec.name}",
                     *(o if " " not in o else f"'{o}'" for o in options)])


# -- the expected outputs ------------------------------------------------------------------

def test_specs_are_there():
    names = {p.stem for p in SPECS.glob("*.spec")}
    assert {"lost-update", "write-skew", "deadlock", "nowait", "skip-locked"} <= names


def test_every_spec_has_an_expected_output():
    covered = {command(out)[0] for out in expected_files()}
    missing = sorted(p.name for p in SPECS.glob("*.spec") if p not in covered)
    assert not missing, f"specs without specs/expected/NAME.out: {missing}"


def test_every_expected_output_has_its_spec():
    orphans = [out.name for out in expected_files() if not command(out)[0].exists()]
    assert not orphans, f"expected outputs whose spec is gone: {orphans}"


@pytest.mark.parametrize("out", expected_files(), ids=lambda p: p.name)
def test_output_matches_expected(out: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch):
    spec, options = command(out)
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LAB_DATABASE_URL", raising=False)  # embedded PostgreSQL by default
    rc = cli.main(["run", f"specs/{spec.name}", *options])
    got, err = capsys.readouterr()
    assert rc == 0, err
    want = out.read_text()
    if got != want:
        diff = "".join(difflib.unified_diff(
            want.splitlines(keepends=True), got.splitlines(keepends=True),
            fromfile=f"specs/expected/{out.name}", tofile="python -m lab run (now)"))
        cmd = run_command(spec, options)
        pytest.fail(f"the output of `{cmd}` differs from specs/expected/{out.name}:\n{diff}\n"
                    f"if the new output is right, regenerate it with:\n"
                    f"  {cmd} > specs/expected/{out.name}", pytrace=False)


# -- the Python API: what the runner recorded ------------------------------------------------

@cache
def scenario_of(name: str):
    path = SPECS / f"{name}.spec"
    return to_scenario(load(str(path)), f"specs/{path.name}")


def play(name: str, permutation: str, isolation: str = "read committed",
         db: str = "embedded") -> RunResult:
    scenario = scenario_of(name)
    return Run(scenario, isolation=isolation, db=db).play(permutation)


def listed(name: str) -> list[str]:
    return [" ".join(map(str, perm)) for perm in scenario_of(name).driver.listed]


def section(out: str, permutation: str) -> str:
    """One permutation's part of an isolationtester output."""
    for part in out.split("\nstarting permutation: ")[1:]:
        if part.splitlines()[0] == permutation:
            return part
    raise AssertionError(f"no permutation {permutation!r} in the output")


def expected(name: str) -> str:
    return (EXPECTED / name).read_text()


def rows_of(r: RunResult, step: str) -> list[tuple]:
    """The rows a step's result sets showed, as PostgreSQL's text output."""
    return [row for e in r.events if e.step == step and e.kind == "complete"
            for rs in e.results for row in rs.rows]


# lost-update ------------------------------------------------------------------------------

LOST_NO_WAIT = "a_read b_read a_write a_commit b_write b_commit b_check"
LOST_AFTER_WAIT = "a_read b_read a_write b_write a_commit b_commit b_check"
LOST_FIXED = "a_lock b_lock a_write a_commit b_write b_commit b_check"


def test_lost_update_spec_lists_the_permutations_the_tests_name():
    assert listed("lost-update") == [LOST_NO_WAIT, LOST_AFTER_WAIT, LOST_FIXED]


@pytest.mark.parametrize("perm", [LOST_NO_WAIT, LOST_AFTER_WAIT])
def test_read_committed_loses_coordinator_a_edit(perm: str):
    r = play("lost-update", perm)
    assert r.verdict.outcome == "anomaly" and "lost update" in r.verdict.text
    assert r.tables["lost update"] == ({"lost_edit": "edit A", "notes": "seed +B"},)
    assert r.errors() == {} and r.commit_order() == ["a", "b"]
    # waiting for A's row lock does not help: B writes what it read before A committed
    assert r.waits() == ([("b_write", ("a",))] if perm == LOST_AFTER_WAIT else [])


def test_for_update_makes_b_wait_and_keep_both_edits():
    r = play("lost-update", LOST_FIXED)
    assert r.waits() == [("b_lock", ("a",))]
    assert r.outputs("b_lock")  # b_lock completed after the wait and read A's note
    assert r.verdict.outcome == Outcome.WAITED
    assert r.tables["lost update"] == ()
    assert "seed +A +B|edit A, edit B" in section(expected("lost-update.out"), LOST_FIXED)


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
@pytest.mark.parametrize("perm,failing", [(LOST_NO_WAIT, "b_write"),
                                          (LOST_AFTER_WAIT, "b_write"), (LOST_FIXED, "b_lock")])
def test_snapshot_levels_abort_b_instead(isolation: str, perm: str, failing: str):
    r = play("lost-update", perm, isolation)
    assert r.errors()[failing] == "40001"
    assert r.commit_order() == ["a"]
    # B's edit is absent because B aborted, and the invariant does not count that as lost
    assert r.verdict.outcome == Outcome.ABORTED, r.verdict
    assert r.tables["lost update"] == ()


def test_lost_update_invariant_is_exact_at_every_level():
    """Without the FOR UPDATE reads, every interleaving: the invariant fires under READ
    COMMITTED, and never under the snapshot levels, where the same orders abort."""
    spec = load(str(SPECS / "lost-update.spec"))
    sessions = tuple(dataclasses.replace(s, steps=tuple(st for st in s.steps
                                                        if not st.name.endswith("_lock")))
                     for s in spec.sessions)
    plain = to_scenario(dataclasses.replace(spec, sessions=sessions, permutations=()),
                        "lost-update (plain reads)")
    target = resolve("embedded")
    found = {level: explore(plain, None, level, target)
             for level in ("read committed", "repeatable read", "serializable")}
    rc = found["read committed"]
    assert rc.count("anomaly") > 0 and rc.count("stuck") == 0
    assert all("lost update" in i.detail for i in rc.anomalies)
    for level in ("repeatable read", "serializable"):
        e = found[level]
        assert e.count("anomaly") == 0 and e.count("stuck") == 0, level
        assert e.count("aborted") == rc.count("anomaly"), level  # the same orders abort
        assert {i.detail for i in e.interleavings if i.outcome == "aborted"} == {"40001"}


# write-skew -------------------------------------------------------------------------------

SKEW = "a_check b_check a_leave b_leave a_commit b_commit b_roster"
SERIAL = "a_check a_leave a_commit b_check b_leave b_commit b_roster"


def test_write_skew_spec_lists_the_permutations_the_tests_name():
    assert listed("write-skew") == [SKEW, SERIAL]


@pytest.mark.parametrize("isolation", ["read committed", "repeatable read"])
def test_write_skew_leaves_nobody_on_call(isolation: str):
    r = play("write-skew", SKEW, isolation)
    assert r.verdict.outcome == "anomaly" and "write skew" in r.verdict.text
    assert [row["on_call"] for row in r.tables["write skew"]] == [0]
    assert r.errors() == {} and r.waits() == []  # different rows: nothing waits
    assert r.commit_order() == ["adams", "baker"]


def test_serializable_refuses_the_second_commit():
    r = play("write-skew", SKEW, "serializable")
    assert r.errors() == {"b_commit": "40001"}
    assert r.commit_order() == ["adams"]
    assert r.verdict.outcome == Outcome.ABORTED
    out = section(expected("write-skew.serializable.out"), SKEW)
    assert ("step b_commit: COMMIT;\nERROR:  could not serialize access due to read/write"
            " dependencies among transactions\n") in out
    assert out.endswith("name    \n--------\nDr Baker\n(1 row)\n\n")


@pytest.mark.parametrize("isolation", ["read committed", "serializable"])
def test_one_after_the_other_baker_stays(isolation: str):
    r = play("write-skew", SERIAL, isolation)
    assert r.verdict.outcome == "fine" and r.errors() == {}
    assert rows_of(r, "b_check") == [("0",)]  # Baker finds nobody else on call
    assert rows_of(r, "b_roster") == [("Dr Baker",)]
    assert "others\n------\n     0\n" in section(expected("write-skew.out"), SERIAL)


def test_write_skew_on_sqlite():
    """SQLite locks the whole database. a_leave takes its write (RESERVED) lock; b_leave,
    in a transaction that already holds a read (SHARED) lock, is refused at once with
    SQLITE_BUSY: SQLite does not call the busy handler when a reader wants to become a
    writer while another connection writes, as waiting could deadlock. The refused
    statement does not end Baker's transaction; his read lock keeps a_commit waiting
    until b_commit (which commits nothing) releases it. So no skew, Baker stays on call.
    """
    r = play("write-skew", SKEW, db="sqlite")
    assert r.errors() == {"b_leave": "SQLITE_BUSY"}
    assert [step for step, _ in r.waits()] == ["a_commit"]
    assert r.commit_order() == ["baker", "adams"]
    assert r.verdict.outcome != "anomaly" and r.tables["write skew"] == ()
    out = section(expected("write-skew.sqlite.out"), SKEW)
    assert "ERROR:  database is locked\nstep a_commit: COMMIT; <waiting ...>\n" in out
    assert out.endswith("Dr Baker\n(1 row)\n\n")


# deadlock ---------------------------------------------------------------------------------

CROSSED = "s1_source s2_source s1_target s2_target s1_commit s2_commit"
ORDERED = "s1_both s2_both s1_commit s2_commit"


def test_deadlock_spec_lists_the_permutations_the_tests_name():
    assert listed("deadlock") == [CROSSED, ORDERED]


def test_deadlock_output_has_exactly_one_deadlock():
    out = expected("deadlock.out")
    assert out.count("ERROR:  deadlock detected") == 1
    crossed = section(out, CROSSED)
    assert ("step s1_target: <... completed>\nERROR:  deadlock detected\n"
            "step s2_target: <... completed>\n") in crossed
    assert "ERROR" not in section(out, ORDERED)


def test_the_first_waiter_is_the_deadlock_victim():
    r = play("deadlock", CROSSED)
    assert r.waits() == [("s1_target", ("s2",)), ("s2_target", ("s1",))]
    assert r.errors() == {"s1_target": "40P01"}
    assert r.commit_order() == ["s2"]
    assert r.outputs("s2_target")  # s2 got row 3 once s1 was rolled back


def test_locking_in_id_order_waits_instead_of_deadlocking():
    r = play("deadlock", ORDERED)
    assert r.errors() == {}
    assert r.waits() == [("s2_both", ("s1",))]
    assert r.commit_order() == ["s1", "s2"]


# nowait -----------------------------------------------------------------------------------

HELD = "a_open m_take a_cancel a_commit m_commit m_check"
MATCHER_FIRST = "m_take a_open m_approve m_commit a_cancel a_commit m_check"
NOWAIT_SERIAL = "a_open a_cancel a_commit m_take m_approve m_commit m_check"


def test_nowait_spec_lists_the_permutations_the_tests_name():
    assert listed("nowait") == [HELD, MATCHER_FIRST, NOWAIT_SERIAL]


def test_nowait_fails_at_once_instead_of_waiting():
    out = section(expected("nowait.out"), HELD)
    assert ("ERROR:  could not obtain lock on row in relation \"swap_request\"\n") in out
    assert "<waiting ...>" not in out
    r = play("nowait", HELD)
    assert r.errors() == {"m_take": "55P03"} and r.waits() == []
    assert r.commit_order() == ["adams"]  # m_commit only ended the failed transaction
    assert "1|cancelled" in out


def test_plain_for_update_waits_for_the_matcher():
    r = play("nowait", MATCHER_FIRST)
    assert r.errors() == {} and r.waits() == [("a_open", ("matcher",))]
    assert r.commit_order() == ["matcher", "adams"]
    out = section(expected("nowait.out"), MATCHER_FIRST)
    assert out.endswith("id|status  \n--+--------\n 1|approved\n(1 row)\n\n")


def test_nothing_left_for_a_late_matcher():
    assert "(0 rows)" in section(expected("nowait.out"), NOWAIT_SERIAL)


# skip-locked ------------------------------------------------------------------------------

SKIP = "w1_take w2_take w1_commit w2_commit w2_check"
NAIVE = "w1_take naive_take w1_commit naive_commit w2_check"
NAIVE_QUEUE = "w1_take w2_take naive_take w1_commit w2_commit naive_commit w2_check"


def test_skip_locked_spec_lists_the_permutations_the_tests_name():
    assert listed("skip-locked") == [SKIP, NAIVE, NAIVE_QUEUE]


def taken(r: RunResult, step: str) -> str:
    """The request id a take step's RETURNING gave."""
    (row,) = rows_of(r, step)
    return row[0]


def test_skip_locked_workers_get_different_requests_without_waiting():
    assert "<waiting ...>" not in section(expected("skip-locked.out"), SKIP)
    r = play("skip-locked", SKIP)
    assert r.waits() == [] and r.errors() == {}
    assert (taken(r, "w1_take"), taken(r, "w2_take")) == ("1", "2")
    assert r.verdict.outcome == "fine" and r.tables["double processing"] == ()


def test_plain_for_update_waits_then_takes_the_next_request():
    out = expected("skip-locked.out")
    assert "step naive_take: <... completed>" in section(out, NAIVE)
    r = play("skip-locked", NAIVE)
    assert r.waits() == [("naive_take", ("w1",))]
    assert (taken(r, "w1_take"), taken(r, "naive_take")) == ("1", "2")
    assert r.verdict.outcome == Outcome.WAITED
    r = play("skip-locked", NAIVE_QUEUE)
    assert [step for step, _ in r.waits()] == ["naive_take"]
    assert taken(r, "naive_take") == "3"  # after waiting for #1 and then #2
    assert r.tables["double processing"] == ()


def test_double_processing_invariant_catches_a_request_approved_twice(tmp_path: Path):
    """The invariant is not vacuous: two matchers that approve request #1 without locking
    it (each read it pending) leave two stamps, and it fires."""
    spec = load(str(SPECS / "skip-locked.spec"))
    (setup,), (inv,) = spec.setup, spec.invariants
    approve = ("UPDATE swap_request SET status = 'approved', reason = reason || ', approved by"
               " {}' WHERE id = 1;")
    text = (f"setup {{ {setup} }}\n"
            f"session x\nstep x_approve {{ {approve.format('x')} }}\n"
            f"session y\nstep y_approve {{ {approve.format('y')} }}\n"
            f'invariant "{inv.label}" {{ {inv.sql} }}\n'
            "permutation x_approve y_approve\n")
    path = tmp_path / "double.spec"
    path.write_text(text)
    r = Run(to_scenario(load(str(path)), str(path)), db="embedded").play("x_approve y_approve")
    assert r.verdict.outcome == "anomaly" and "double processing" in r.verdict.text
    assert r.tables["double processing"] == (
        {"id": 1, "reason": "conference, approved by x, approved by y"},)


# -- bad input on the command line -------------------------------------------------------------

def lab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


BAD_SPECS = {
    # name: (text, the line the error is on, words the message has)
    "unclosed.spec": ("session a\nstep a1 { SELECT 1; }\nstep a2 { SELECT 2;\n\n", 3,
                      "never closed"),
    "unknown-step.spec": ("session a\nstep a1 { SELECT 1; }\nsession b\nstep b1 { SELECT 2; }\n"
                          "permutation a1 b1\npermutation a1 nosuch b1\n", 6, "nosuch"),
    "duplicate-step.spec": ("session a\nstep a1 { SELECT 1; }\nsession b\n"
                            "step a1 { SELECT 2; }\n", 4, "duplicate step"),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_a_malformed_spec_is_one_line_and_exit_2(name: str, tmp_path: Path):
    text, line, words = BAD_SPECS[name]
    path = tmp_path / name
    path.write_text(text)
    out = lab("run", str(path), cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert f"{path}:{line}:" in lines[0] and words in lines[0]
    assert "Traceback" not in out.stderr


def test_a_missing_spec_is_one_line_and_exit_2(tmp_path: Path):
    path = tmp_path / "nowhere.spec"
    out = lab("run", str(path), cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and str(path) in lines[0], out.stderr
    assert "Traceback" not in out.stderr
