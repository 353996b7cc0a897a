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
    with pytest.raises(PermutationError, match="both are steps of session a"):
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
