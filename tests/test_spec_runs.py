"""Spec files through the one conductor: psql-like sessions, blocker markers, every order
when no permutation is listed, and isolationtester's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import cli
from lab.errors import PermutationError
from lab.runner import Run
from lab.spec.parser import parse
from lab.spec.scenario import to_scenario

SPEC = """
setup { UPDATE assignment SET notes = 'seed' WHERE id = 1; }
session a
step a_begin { BEGIN; }
step a_write { UPDATE assignment SET notes = 'A' WHERE id = 1; }
step a_commit { COMMIT; }
session b
step b_begin { BEGIN; }
step b_write { UPDATE assignment SET notes = 'B' WHERE id = 1; }
step b_read { SELECT id, notes FROM assignment WHERE id IN (1, 2) ORDER BY id; SELECT 42 AS answer; }
step b_commit { COMMIT; }
"""


def scenario(text: str = SPEC):
    return to_scenario(parse(text, "t.spec"), "t.spec")


def play(perm: str, text: str = SPEC, **kw):
    return Run(scenario(text), **kw).play(perm)


def lines(capsys, *args: str) -> list[str]:
    assert cli.main(["run", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_psql_session_keeps_its_transaction_open_across_steps_and_waits_for_a_lock():
    r = play("a_begin a_write b_begin b_write a_commit b_read b_commit")
    assert r.waited_for("b_write") == ("a",)
    assert r.commit_order() == ["a", "b"]
    reads = [e for e in r.events if e.step == "b_read" and e.results]
    assert [rs.rows for rs in reads[0].results] == [(("1", "B"), ("2", "")), (("42",),)]


def test_an_error_leaves_the_transaction_aborted_until_the_text_ends_it():
    text = SPEC.replace("UPDATE assignment SET notes = 'B'", "UPDATE assignment SET nope = 1")
    r = play("b_begin b_write b_read b_commit", text)
    assert r.errors() == {"b_write": "42703", "b_read": "25P02"}
    assert [e.kind for e in r.events if e.step == "b_commit"][-1] == "rollback"
    assert r.commit_order() == []


def test_isolationtester_output_with_tables_waits_and_completions(tmp_path: Path, capsys):
    spec = tmp_path / "t.spec"
    spec.write_text(SPEC)
    out = lines(capsys, str(spec), "--permutation",
                "a_begin a_write b_begin b_write a_commit b_read b_commit")
    assert out[:4] == ["Parsed test spec with 2 sessions", "",
                       "starting permutation: a_begin a_write b_begin b_write a_commit b_read"
                       " b_commit", "step a_begin: BEGIN;"]
    assert "step b_write: UPDATE assignment SET notes = 'B' WHERE id = 1; <waiting ...>" in out
    at = out.index("step a_commit: COMMIT;")
    assert out[at + 1] == "step b_write: <... completed>"
    read = out.index("step b_read: SELECT id, notes FROM assignment WHERE id IN (1, 2) ORDER BY"
                     " id; SELECT 42 AS answer;")
    assert out[read + 1: read + 11] == ["id|notes", "--+-----", " 1|B    ", " 2|     ",
                                        "(2 rows)", "", "answer", "------", "    42", "(1 row)"]


def test_star_marker_reports_waiting_then_completes_after_the_next_step(tmp_path, capsys):
    spec = tmp_path / "t.spec"
    spec.write_text(SPEC)
    out = lines(capsys, str(spec), "--permutation", "a_begin(*) b_begin a_write a_commit")
    assert out[3:7] == ["step a_begin: BEGIN; <waiting ...>", "step b_begin: BEGIN;",
                        "step a_begin: <... completed>",
                        "step a_write: UPDATE assignment SET notes = 'A' WHERE id = 1;"]


def test_step_marker_holds_a_finished_step_until_the_other_completes(tmp_path, capsys):
    """a_commit finishes at once and releases b_write; (b_write) reports a_commit after it."""
    spec = tmp_path / "t.spec"
    spec.write_text(SPEC)
    out = lines(capsys, str(spec), "--permutation",
                "a_begin a_write b_begin b_write a_commit(b_write) b_commit")
    at = out.index("step a_commit: COMMIT; <waiting ...>")
    assert out[at + 1: at + 4] == ["step b_write: <... completed>",
                                   "step a_commit: <... completed>", "step b_commit: COMMIT;"]
    plain = lines(capsys, str(spec), "--permutation",
                  "a_begin a_write b_begin b_write a_commit b_commit")
    at = plain.index("step a_commit: COMMIT;")
    assert plain[at + 1] == "step b_write: <... completed>"


def test_markers_may_not_name_a_step_of_the_same_session():
    with pytest.raises(PermutationError, match="both are in session .a."):
        play("a_begin a_write(a_begin) a_commit")


def test_a_spec_permutation_may_repeat_steps_and_reorder_a_session():
    r = play("b_begin b_read b_read b_commit")
    assert [e.step for e in r.events if e.kind == "launch"] == \
        ["b_begin", "b_read", "b_read", "b_commit"]


def test_no_permutation_lines_runs_every_order_in_isolationtesters_order(tmp_path, capsys):
    spec = tmp_path / "t.spec"
    spec.write_text("""
session s1
step s1a { SELECT 1; }
step s1b { SELECT 2; }
session s2
step s2a { SELECT 3; }
step s2b { SELECT 4; }
""")
    out = lines(capsys, str(spec))
    assert [ln for ln in out if ln.startswith("starting")] == [
        f"starting permutation: {p}" for p in (
            "s1a s1b s2a s2b", "s1a s2a s1b s2b", "s1a s2a s2b s1b",
            "s2a s1a s1b s2b", "s2a s1a s2b s1b", "s2a s2b s1a s1b")]


def test_a_spec_run_draws_one_timeline_per_permutation(tmp_path, capsys):
    spec = tmp_path / "t.spec"
    spec.write_text(SPEC + "permutation a_begin a_write b_begin b_write a_commit b_commit\n"
                    "permutation b_begin b_write b_commit\n")
    out = lines(capsys, str(spec), "--plot", str(tmp_path))
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["t-001.png", "t-002.png"] and "(2 files)" in out[-1]


CYCLE = """
setup { CREATE TABLE t1 (); CREATE TABLE t2 (); CREATE TABLE t3 (); }
teardown { DROP TABLE t1, t2, t3; }
session s1
setup { BEGIN; SET deadlock_timeout = '100s'; }
step s1a1 { LOCK TABLE t1; }
step s1a2 { LOCK TABLE t2; }
step s1c { COMMIT; }
session s2
setup { BEGIN; SET deadlock_timeout = '100s'; }
step s2a2 { LOCK TABLE t2; }
step s2a3 { LOCK TABLE t3; }
step s2c { COMMIT; }
session s3
setup { BEGIN; SET deadlock_timeout = '10ms'; }
step s3a3 { LOCK TABLE t3; }
step s3a1 { LOCK TABLE t1; }
step s3c { COMMIT; }
permutation s1a1 s2a2 s3a3 s1a2 s2a3(s3a1) s3a1(*) s3c s2c s1c
"""


def test_a_spec_that_sets_deadlock_timeout_picks_its_own_victim_and_markers_order_the_report(
        tmp_path, capsys):
    """deadlock-hard in small: s3 (10 ms) is the victim although it waited last; the
    lab's stagger would have picked s1. (*) and (s3a1) give isolationtester's order."""
    spec = tmp_path / "cycle.spec"
    spec.write_text(CYCLE)
    out = lines(capsys, str(spec))
    assert out[6:] == [
        "step s1a2: LOCK TABLE t2; <waiting ...>",
        "step s2a3: LOCK TABLE t3; <waiting ...>",
        "step s3a1: LOCK TABLE t1; <waiting ...>",
        "step s3a1: <... completed>",
        "ERROR:  deadlock detected",
        "step s2a3: <... completed>",
        "step s3c: COMMIT;",
        "step s2c: COMMIT;",
        "step s1a2: <... completed>",
        "step s1c: COMMIT;"]


def test_a_spec_permutation_waits_for_blocked_steps_before_ending_transactions(tmp_path, capsys):
    """As isolationtester: s2's statement_timeout ends its wait, not s1's end-of-run ROLLBACK."""
    spec = tmp_path / "t.spec"
    spec.write_text("""
setup { SELECT 'ready' AS state; }
session s1
step s1_lock { BEGIN; UPDATE assignment SET notes = 'x' WHERE id = 1; }
session s2
setup { SET statement_timeout = '300ms'; }
step s2_update { UPDATE assignment SET notes = 'y' WHERE id = 1; }
permutation s1_lock s2_update
""")
    out = lines(capsys, str(spec))
    assert out[2:] == [
        "starting permutation: s1_lock s2_update",
        "state", "-----", "ready", "(1 row)", "",  # what setup returned, as isolationtester
        "step s1_lock: BEGIN; UPDATE assignment SET notes = 'x' WHERE id = 1;",
        "step s2_update: UPDATE assignment SET notes = 'y' WHERE id = 1; <waiting ...>",
        "step s2_update: <... completed>",
        "ERROR:  canceling statement due to statement timeout"]


def test_rollback_to_savepoint_does_not_end_the_transaction():
    r = play("b_begin b_write b_commit", SPEC.replace(
        "step b_write { UPDATE assignment SET notes = 'B' WHERE id = 1; }",
        "step b_write { SAVEPOINT f; UPDATE assignment SET notes = 'B' WHERE id = 1;"
        " ROLLBACK TO f; }"))
    assert [e.kind for e in r.events if e.kind in ("commit", "rollback")] == ["commit"]
    assert r.commit_order() == ["b"]
