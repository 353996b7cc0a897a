"""Seed frame 5.1 on both backends: who waited for whom, commit order, SQLSTATEs, rows."""

from __future__ import annotations

from lab.runner import Outcome, Run
from lab.scenarios import get
from lab.scenarios.edit_steps import A_NOTES, B_PERSON

PG = "embedded"


def play(name: str, case: str | None = None, isolation: str | None = None, db: str = PG):
    return Run(get(name), case, isolation=isolation, db=db).play()


def test_partial_update_keeps_both_edits_after_b_waits_for_a():
    r = play("concurrent-edit", "partial-update")
    assert r.waits() == [("b_save", ("A",))]
    assert r.commit_order() == ["A", "B"]
    assert r.errors() == {}
    assert r.final == ({"id": 1, "person": B_PERSON, "notes": A_NOTES},)
    assert r.verdict.outcome == Outcome.WAITED


def test_whole_object_save_loses_a_edit_under_read_committed():
    r = play("concurrent-edit", "whole-object-save", "read committed")
    assert r.waits() == [("b_save", ("A",))]
    assert r.commit_order() == ["A", "B"]
    assert r.final == ({"id": 1, "person": B_PERSON, "notes": ""},)
    assert r.verdict.outcome == "anomaly"
    assert "lost update" in r.verdict.text


def test_whole_object_save_fails_40001_under_repeatable_read():
    r = play("concurrent-edit", "whole-object-save", "repeatable read")
    assert r.waits() == [("b_save", ("A",))]
    assert r.errors() == {"b_save": "40001"}
    assert r.commit_order() == ["A"]
    assert r.final == ({"id": 1, "person": "Resident One", "notes": A_NOTES},)
    assert r.verdict.outcome == Outcome.ABORTED


def test_explicit_locking_b_waits_then_sees_a_change():
    r = play("explicit-locking")
    assert r.waits() == [("b_lock", ("A",))]
    kinds = [(e.kind, e.step) for e in r.events if e.step == "b_lock"]
    # B's locking read completes only after A's commit, and then shows A's note
    assert kinds.index(("wait", "b_lock")) < kinds.index(("complete", "b_lock"))
    a_commit = next(e.seq for e in r.events if e.kind == "commit" and e.session == "A")
    b_done = next(e.seq for e in r.events if e.step == "b_lock" and e.resumed)
    assert a_commit < b_done
    assert f"notes={A_NOTES!r}" in r.outputs("b_lock")[0]
    assert r.commit_order() == ["A", "B"]
    assert r.final == ({"id": 1, "person": B_PERSON, "notes": A_NOTES},)
    assert r.verdict.outcome == Outcome.WAITED
    assert any(e.kind == "lock" and str(e.lock) == "assignment (FOR UPDATE/SHARE)"
               and e.step == "a_lock" for e in r.events)


def test_explicit_locking_under_repeatable_read_aborts_b():
    r = play("explicit-locking", isolation="repeatable read")
    assert r.waits() == [("b_lock", ("A",))]
    assert r.error_of("b_lock") == "40001"
    assert r.final[0]["notes"] == A_NOTES


# -- SQLite: what it really does -------------------------------------------------------

def test_sqlite_edit_fails_fast_instead_of_losing_an_update():
    for case in ("partial-update", "whole-object-save"):
        r = play("concurrent-edit", case, db="sqlite")
        assert r.waits() == []  # SQLite skips its busy handler: waiting could deadlock
        assert r.errors() == {"b_save": "SQLITE_BUSY"}
        assert r.commit_order() == ["A"]
        assert r.final == ({"id": 1, "person": "Resident One", "notes": A_NOTES},)
        assert r.verdict.outcome == Outcome.ABORTED
        assert any("FOR UPDATE is dropped" in n for n in r.notes)


def test_sqlite_drops_for_update_and_a_commit_waits_for_b_read_lock():
    r = play("explicit-locking", db="sqlite")
    assert "notes=''" in r.outputs("b_lock")[0]  # B did not wait: FOR UPDATE was dropped
    assert r.waits() == [("a_commit", ("the database lock",))]
    assert r.errors() == {"b_save": "SQLITE_BUSY"}
    assert r.commit_order() == ["A"]
    a_done = next(e.seq for e in r.events if e.kind == "commit")
    b_err = next(e.seq for e in r.events if e.kind == "error")
    assert b_err < a_done  # A's commit could finish only once B's error released its lock
    assert r.final == ({"id": 1, "person": "Resident One", "notes": A_NOTES},)


def test_sqlite_wal_commits_a_and_rejects_b_stale_snapshot():
    r = play("explicit-locking", db="sqlite-wal")
    assert r.waits() == []
    assert r.errors() == {"b_save": "SQLITE_BUSY_SNAPSHOT"}
    assert r.commit_order() == ["A"]
