"""The conductor itself: detection, errors as events, bounds, cleanup, two ways in."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lab.errors import PermutationError, RunFailed
from lab.models import Assignment
from lab.runner import COMMIT, ROLLBACK, Outcome, Run, Scenario, Variant, Verdict, step

PG = "embedded"


def _ok(result) -> Verdict:
    return Verdict("fine", "not judged here")


def scenario(sessions: dict, permutation: str, final: str = "SELECT 1 AS one") -> Scenario:
    return Scenario(
        name="probe", title="probe", summary="probe", frame="-", setup=None,
        final_state=final,
        variants=(Variant("only", "", sessions, permutation, _ok),),
    )


def lab_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lab-session-")]


def test_sql_steps_report_rows_and_rowcounts(backend):
    sc = scenario({"A": [step("a1", "SELECT id, name FROM person WHERE id <= 2 ORDER BY id"),
                         step("a2", "UPDATE person SET name = 'X' WHERE id = 1"),
                         step("a3", COMMIT)]},
                  "a1 a2 a3", "SELECT name FROM person WHERE id = 1")
    r = Run(sc, db=backend).play()
    assert r.outputs("a1") == ["2 rows: (1, 'Resident One'), (2, 'Resident Two')"]
    assert r.outputs("a2") == ["UPDATE 1"]
    assert r.final == ({"name": "X"},)


def test_deadlock_victim_is_the_first_waiter_and_the_other_commits():
    upd = "UPDATE person SET name = name || '{}' WHERE id = {}"
    sc = scenario({"A": [step("a1", upd.format("a", 1)), step("a2", upd.format("a", 2)),
                         step("a3", COMMIT)],
                   "B": [step("b1", upd.format("b", 2)), step("b2", upd.format("b", 1)),
                         step("b3", COMMIT)]},
                  "a1 b1 a2 b2 a3 b3", "SELECT id, name FROM person WHERE id <= 2 ORDER BY id")
    traces = set()
    for _ in range(5):
        r = Run(sc, db=PG).play()
        assert r.waits() == [("a2", ("B",)), ("b2", ("A",))]
        assert r.errors() == {"a2": "40P01"}
        assert r.commit_order() == ["B"]
        assert r.final == ({"id": 1, "name": "Resident Oneb"}, {"id": 2, "name": "Resident Twob"})
        traces.add(r.text())
    assert len(traces) == 1


UPD = "UPDATE person SET name = name || '{}' WHERE id = {}"
# B naps before it closes the cycle: a first waiter's timer shorter than the nap fires
# before the cycle closes (the nap stands for a busy machine slow to launch B's step)
NAPPING = {"A": [step("a1", UPD.format("a", 1)), step("a2", UPD.format("a", 2)),
                 step("a3", COMMIT)],
           "B": [step("b1", UPD.format("b", 2)), step("b_nap", "SELECT pg_sleep(0.02)"),
                 step("b2", UPD.format("b", 1)), step("b3", COMMIT)]}


def test_a_victim_chosen_by_timing_is_caught_not_passed_off_as_the_stagger():
    sc = scenario(NAPPING, "a1 b1 a2 b_nap b2 a3 b3")
    late = Run(sc, db=PG, stagger_ms=1).play()  # A's 1 ms timer found no cycle yet
    assert late.errors() == {"b2": "40P01"} and late.victim_by_timing
    assert any("chosen by timing" in n for n in late.notes)  # the trace says so
    held = Run(sc, db=PG).play()  # the default leaves the 20 ms nap far behind
    assert held.errors() == {"a2": "40P01"} and not held.victim_by_timing


def test_the_explorer_plays_a_run_again_when_timing_chose_the_victim(monkeypatch):
    from lab import explorer

    sc = scenario(NAPPING, "a1 b1 a2 b_nap b2 a3 b3")
    steady = explorer.explore(sc, db=PG, serial_check=False)
    monkeypatch.setattr(explorer, "STAGGER_MS", 1)  # 1, 4, 16 ms: shorter than the nap
    monkeypatch.setattr(explorer, "REPLAYS", 5)
    hurried = explorer.explore(sc, db=PG, serial_check=False)
    assert hurried.interleavings == steady.interleavings  # the same victims, every one
    napped = [i for i in hurried.interleavings if i.permutation[2:5] == ("a2", "b_nap", "b2")]
    assert napped and all(i.replayed >= 3 for i in napped)
    assert steady.count("deadlock") > 0


def test_nowait_fails_with_55p03_and_unique_violation_with_23505():
    lock = "SELECT id FROM assignment WHERE id = 1 FOR UPDATE"
    book = ("INSERT INTO assignment (block_id, person_id, rotation_template_id, role, notes,"
            " updated_at) VALUES (20, 1, 1, 'primary', '', CURRENT_TIMESTAMP)")
    sc = scenario({"A": [step("a1", lock), step("a2", book), step("a3", COMMIT)],
                   "B": [step("b1", lock + " NOWAIT"), step("b2", ROLLBACK), step("b3", book),
                         step("b4", COMMIT)]},
                  "a1 b1 b2 a2 b3 a3 b4")
    r = Run(sc, db=PG).play()
    assert r.error_of("b1") == "55P03"
    assert r.waits() == [("b3", ("A",))]  # B's insert waits on A's uncommitted duplicate key
    assert r.error_of("b3") == "23505"
    assert r.commit_order() == ["A"]


def test_stale_orm_update_is_recorded_as_stale_data_error():
    def load(s: Session):
        s.info["a"] = s.scalars(select(Assignment).where(Assignment.id == 1)).one()
        return "loaded"

    def edit(s: Session):
        s.info["a"].notes = "stale edit"
        s.flush()

    sc = scenario({"A": [step("a1", "DELETE FROM assignment WHERE id = 1"), step("a2", COMMIT)],
                   "B": [step("b1", load), step("b2", edit), step("b3", "SELECT 1"),
                         step("b4", COMMIT)]},
                  "b1 a1 a2 b2 b3 b4")
    r = Run(sc, db=PG).play()
    assert r.error_of("b2") == "StaleDataError"
    assert [e.kind for e in r.events if e.step == "b3"] == ["launch", "skip"]
    assert r.commit_order() == ["A"]


def test_a_stuck_step_fails_naming_step_session_and_blocker():
    upd = "UPDATE person SET name = 'x' WHERE id = 1"
    sc = scenario({"A": [step("a1", upd), step("a2", COMMIT)],
                   "B": [step("b1", upd), step("b2", COMMIT)]}, "a1 b1 b2 a2")
    with pytest.raises(RunFailed) as info:
        Run(sc, db=PG, timeout=0.3).play()
    message = str(info.value)
    assert "step b1 (session B)" in message and "blocked by A" in message
    assert "b2" in message and "python -m lab run probe" in message
    assert lab_threads() == []


def test_step_by_step_and_play_are_one_engine(backend):
    from lab.scenarios import get

    run = Run(get("explicit-locking"), db=backend)
    for name in run.variant.entries():
        run.step(name)
    stepped = run.finish().text()
    played = Run(get("explicit-locking"), db=backend).play().text()
    assert stepped == played


def test_out_of_order_and_unknown_steps_are_rejected():
    from lab.scenarios import get

    with Run(get("explicit-locking"), db="sqlite") as run:
        with pytest.raises(PermutationError, match="out of order"):
            run.step("a_save")
    with pytest.raises(PermutationError, match="unknown step 'zz'"):
        get("explicit-locking").variants[0].entries("a_lock zz")
    with pytest.raises(PermutationError, match="keep their order"):
        get("explicit-locking").variants[0].entries("a_save a_lock")


def _database_names() -> set[str]:
    import psycopg

    from lab.db import embedded

    with psycopg.connect(embedded.acquire().replace("postgresql+psycopg", "postgresql")) as c:
        return {r[0] for r in c.execute("SELECT datname FROM pg_database")}


def test_run_cleans_up_connections_threads_and_database():
    from lab.scenarios import get

    run = Run(get("explicit-locking"), db=PG)
    name = run.db.name
    assert name in _database_names()
    run.play()
    assert name not in _database_names()
    assert lab_threads() == []


def test_ctrl_c_while_a_session_waits_still_cleans_up(monkeypatch):
    from lab.scenarios import get

    run = Run(get("explicit-locking"), db=PG)
    name = run.db.name
    run.step("a_lock")
    real_await = Run._await

    def interrupted(self, job):
        real_await(self, job)  # B is now really waiting for A's row lock
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "_await", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.step("b_lock")
    assert name not in _database_names()
    assert lab_threads() == []


def test_sqlite_waiter_proceeds_when_the_writer_commits():
    upd = "UPDATE person SET name = name || '{}' WHERE id = 1"
    sc = scenario({"A": [step("a1", upd.format("a")), step("a2", COMMIT)],
                   "B": [step("b1", upd.format("b")), step("b2", COMMIT)]},
                  "a1 b1 a2 b2", "SELECT name FROM person WHERE id = 1")
    r = Run(sc, db="sqlite").play()
    assert r.waits() == [("b1", ("the database lock",))]
    assert r.commit_order() == ["A", "B"]
    assert r.final == ({"name": "Resident Oneab"},)


def test_three_sessions_two_blocked_at_once_on_different_rows():
    upd = "UPDATE person SET name = name || '{}' WHERE id = {}"
    sc = scenario({"A": [step("a1", upd.format("a", 1)), step("a2", upd.format("a", 2)),
                         step("a3", COMMIT)],
                   "B": [step("b1", upd.format("b", 1)), step("b2", COMMIT)],
                   "C": [step("c1", upd.format("c", 2)), step("c2", COMMIT)]},
                  "a1 a2 b1 c1 a3 b2 c2", "SELECT id, name FROM person WHERE id <= 2 ORDER BY id")
    traces = set()
    for _ in range(5):
        r = Run(sc, db=PG).play()
        assert r.waits() == [("b1", ("A",)), ("c1", ("A",))]
        kinds = [(e.kind, e.step) for e in r.events]
        assert kinds.index(("wait", "c1")) < kinds.index(("commit", "a3"))  # two open waits
        assert r.commit_order() == ["A", "B", "C"]
        assert r.final == ({"id": 1, "name": "Resident Oneab"},
                           {"id": 2, "name": "Resident Twoac"})
        traces.add(r.text())
    assert len(traces) == 1


@pytest.mark.parametrize("db", [PG, "sqlite"])
def test_an_anomaly_prints_a_python_replay_that_plays_the_same_run(db):
    from lab.scenarios import get

    r = Run(get("concurrent-edit"), "whole-object-save", db=db).play(
        "a_load b_load a_save a_commit b_save b_commit")
    anomaly = r.verdict.outcome is Outcome.ANOMALY
    assert anomaly == (db == PG)  # SQLite refuses B's save instead
    assert (f"replay in Python: {r.replay.python}" in r.text()) == anomaly
    again = eval(r.replay.python, {"Run": Run})  # noqa: S307 - our own replay line
    assert again.text() == r.text()
