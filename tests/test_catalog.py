"""Catalog I (frames 5.1 to 5.5) on both backends: waits, commit order, codes, final rows."""

from __future__ import annotations

import pytest

from lab.runner import Outcome, Run
from lab.scenarios import SCENARIOS

PG, SQLITE = "embedded", "sqlite"


def play(name: str, case: str, db: str, isolation: str | None = None):
    return Run(SCENARIOS[name], case, isolation=isolation, db=db).play()


# -- 5.1: the fixes --------------------------------------------------------------------

@pytest.mark.parametrize("case", ["version-check", "compare-and-set"])
def test_stale_save_is_a_409_then_the_loser_reloads_and_retries(case):
    r = play("concurrent-edit", case, PG)
    assert r.waits() == [("b_save", ("A",))]
    assert r.errors() == {"b_save": "409"}
    assert "now version 2" in next(e.detail for e in r.events if e.kind == "error")
    assert r.outputs("b_reload") == ["notes='late start 9:30' person='Resident One' version=2"]
    assert r.commit_order() == ["A", "B"]
    assert r.final == ({"id": 1, "person": "Resident Three", "notes": "late start 9:30"},)
    assert r.verdict.outcome == Outcome.ABORTED


def test_version_check_on_sqlite_fails_fast_then_retries():
    r = play("concurrent-edit", "version-check", SQLITE)
    assert r.errors() == {"b_save": "SQLITE_BUSY"}
    assert r.final == ({"id": 1, "person": "Resident Three", "notes": "late start 9:30"},)


# -- 5.2 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("db", [PG, SQLITE])
def test_naive_generation_books_adams_back_onto_his_swapped_shift(db):
    r = play("swap-during-generation", "naive", db)
    people = [row["person"] for row in r.tables["Monday AM clinic"]]
    assert people[:3] == ["Resident One", "Resident Two", "Dr Chen"] and people[3] == "Dr Adams"
    assert r.tables["swap and task"][0]["swap"] == "executed"
    assert r.waits() == [("g_batch1", ("S",) if db == PG else ("the database lock",))]
    assert r.commit_order()[:2] == ["S", "G"]
    assert r.verdict.outcome == "anomaly"


def test_generation_lock_queues_the_swap_and_runs_it_after():
    r = play("swap-during-generation", "generation-lock", PG)
    assert r.outputs("s_execute") == ["swap #1 queued: a schedule generation is in progress"]
    assert r.outputs("g_queued") == ["swap #1 executed"]
    assert r.waits() == [] and r.errors() == {}
    assert [row["person"] for row in r.tables["Monday AM clinic"]] == \
        ["Resident One", "Resident Two", "Dr Chen"]
    assert r.tables["swap and task"][0] == {"swap": "executed", "task": "completed",
                                            "rows_of_cancelled_task": 0}


def test_cancelled_generation_keeps_the_old_week_and_still_runs_the_queued_swap():
    r = play("swap-during-generation", "cancelled-generation", PG)
    assert "cancel acknowledged" in r.outputs("g_batch2")[0]
    assert r.outputs("g_queued") == ["swap #1 executed"]
    assert r.tables["swap and task"][0] == {"swap": "executed", "task": "cancelled",
                                            "rows_of_cancelled_task": 0}
    assert r.verdict.outcome == "fine"


def test_on_sqlite_the_locked_generation_fails_at_once_and_the_old_week_stands():
    r = play("swap-during-generation", "generation-lock", SQLITE)
    assert r.errors() == {"g_batch1": "SQLITE_BUSY"}  # S holds the write lock: no upgrade
    assert r.outputs("g_queued") == ["swap #1 executed"]  # the failed run released its lock
    assert r.tables["swap and task"][0]["task"] == "failed"


# -- 5.3 ---------------------------------------------------------------------------------

def test_naive_cancel_is_ignored_and_the_task_completes():
    r = play("task-cancellation", "naive", PG)
    assert r.outputs("u_cancel") == ["cancelled"]
    assert r.tables["task"][0]["status"] == "completed"
    assert r.tables["task"][0]["tagged_rows"] == 25
    assert r.verdict.outcome == "anomaly"


def test_cooperative_cancel_rolls_back_and_ends_cancelled():
    r = play("task-cancellation", "cooperative", PG)
    assert r.outputs("u_cancel") == ["cancelling"]
    assert "partial work rolled back" in r.outputs("w_batch2")[0]
    assert r.outputs("u_again") == ["task #1 is cancelled: nothing to cancel"]
    assert r.tables["task"][0] == {"id": 1, "status": "cancelled", "cancelled_at_set": True,
                                   "tagged_rows": 0}


def test_on_sqlite_the_cancel_request_cannot_be_written_while_the_worker_writes():
    r = play("task-cancellation", "cooperative", SQLITE)
    assert r.waits() == [("u_cancel", ("the database lock",))]
    assert r.errors() == {"u_cancel": "SQLITE_BUSY"}
    assert r.tables["task"][0]["status"] == "completed"


@pytest.mark.parametrize("db", [PG, SQLITE])
def test_cancel_after_finish_changes_nothing(db):
    r = play("task-cancellation", "after-finish", db)
    assert r.outputs("u_cancel") == ["task #1 is completed: nothing to cancel"]
    assert r.tables["task"][0]["status"] == "completed"


@pytest.mark.parametrize("db", [PG, SQLITE])
def test_asyncio_task_cancel_rolls_back_the_same_way(db):
    r = play("task-cancellation", "asyncio", db)
    assert r.outputs("w_async") == ["Task.cancel() -> cancelled after batch 1: its transaction"
                                    " rolled back"]
    task = r.tables["task"][0]
    assert (task["status"], bool(task["cancelled_at_set"]), task["tagged_rows"]) == \
        ("cancelled", True, 0)


def test_server_side_cancel_ends_the_lock_wait_with_57014_and_spares_the_holder():
    r = play("task-cancellation", "server-side", PG)
    assert r.waits() == [("w_batch1", ("H",))]
    assert r.errors() == {"w_batch1": "57014"}
    done = [e.seq for e in r.events if e.step == "w_batch1" and e.kind == "error"][0]
    kill = [e.seq for e in r.events if e.step == "u_kill" and e.kind == "complete"][0]
    assert kill < done  # the cancel ended the wait; H had not committed yet
    assert r.commit_order() == ["H"]
    assert r.tables["assignment #1"][0]["notes"] == "being edited by H"
    assert r.tables["task"][0]["status"] == "cancelled"


def test_sqlite_interrupt_lands_once_the_lock_is_free_and_the_task_still_ends_cancelled():
    r = play("task-cancellation", "server-side", SQLITE)
    # W's batch fails at once (a reader may not become a writer while H writes); its
    # clean-up then waits for H, and U's interrupt() lands on that clean-up when H commits
    assert r.errors() == {"w_batch1": "SQLITE_BUSY"}
    assert r.waits() == [("w_batch1", ("the database lock",))]
    done = [e.seq for e in r.events if e.step == "w_batch1" and e.kind == "error"][0]
    commit = [e.seq for e in r.events if e.kind == "commit" and e.session == "H"][0]
    assert commit < done
    assert r.tables["task"][0]["status"] == "cancelled"
    assert r.tables["assignment #1"][0]["notes"] == "being edited by H"


# -- 5.4 ---------------------------------------------------------------------------------

def test_naive_swap_race_dies_on_a_raw_unique_violation():
    r = play("swap-race", "naive", PG)
    assert r.waits() == [("c_execute", ("A",))]
    assert r.errors() == {"c_execute": "23505"}
    assert [s["status"] for s in r.tables["swaps"]] == ["executed", "approved"]
    assert r.verdict.outcome == "anomaly"


@pytest.mark.parametrize("db", [PG, SQLITE])
def test_fixed_swap_race_executes_exactly_one_and_rejects_the_other(db):
    r = play("swap-race", "fixed", db)
    assert r.waits() == [("c_execute", ("A",) if db == PG else ("the database lock",))]
    assert r.outputs("c_execute") == ["swap #2 rejected: assignment #5 already swapped"]
    assert r.commit_order() == ["A", "C"]
    assert [(s["status"], s["reason"]) for s in r.tables["swaps"]] == \
        [("executed", ""), ("rejected", "assignment #5 already swapped")]
    people = {row["id"]: row["person"] for row in r.tables["Baker's Monday PM (#5) and Monday AM"]}
    assert people == {1: "Resident One", 3: "Dr Baker", 5: "Dr Adams"}


@pytest.mark.parametrize(("case", "code"), [("raw-error", "23505"),
                                            ("domain-error", "double-booked")])
def test_unique_constraint_catches_the_double_booking(case, code):
    r = play("double-booking", case, PG)
    assert r.outputs("a_check") == r.outputs("b_check") == ["Resident Three is free on Monday AM"]
    assert r.waits() == [("b_book", ("A",))]
    assert r.errors() == {"b_book": code}
    assert r.tables["bookings"] == ({"bookings": 1},)


def test_double_booking_on_sqlite_is_refused_by_the_database_lock_first():
    r = play("double-booking", "domain-error", SQLITE)
    assert r.errors() == {"b_book": "SQLITE_BUSY"}
    assert r.tables["bookings"] == ({"bookings": 1},)


@pytest.mark.parametrize("db", [PG, SQLITE])
def test_second_open_swap_request_is_refused_clearly(db):
    r = play("pending-swap", "partial-unique-index", db)
    assert r.waits() == [("b_request", ("A",) if db == PG else ("the database lock",))]
    assert r.errors() == {"b_request": "swap-pending"}
    assert r.tables["open requests"] == ({"open_requests": 1},)


# -- 5.5 ---------------------------------------------------------------------------------

OLD, NEW = "Dr Adams, Dr Baker", "Dr Baker, Dr Adams"


@pytest.mark.parametrize(("isolation", "second"), [("read committed", NEW),
                                                   ("repeatable read", OLD)])
def test_postgres_reader_never_waits_and_never_sees_half_a_swap(isolation, second):
    r = play("read-during-write", "report", PG, isolation)
    assert r.waits() == []
    assert [r.outputs(s)[0] for s in ("r_read1", "r_read2", "r_read3")] == [OLD, second, NEW]


def test_sqlite_rollback_journal_makes_the_writer_wait_for_the_reader():
    r = play("read-during-write", "report", SQLITE)
    assert r.waits() == [("w_commit", ("the database lock",))]
    assert [r.outputs(s)[0] for s in ("r_read1", "r_read2", "r_read3")] == [OLD, OLD, NEW]
    assert r.commit_order() == ["R", "W"]


def test_sqlite_wal_lets_both_go_on():
    r = play("read-during-write", "report", "sqlite-wal")
    assert r.waits() == []
    assert [r.outputs(s)[0] for s in ("r_read1", "r_read2", "r_read3")] == [OLD, OLD, NEW]


def test_opposite_lock_order_deadlocks_the_first_waiter_which_retries():
    r = play("swap-deadlock", "opposite-order", PG)
    assert r.waits() == [("a_lock2", ("B",)), ("b_lock2", ("A",))]
    assert r.errors() == {"a_lock2": "40P01"}
    assert r.commit_order()[:2] == ["B", "A"]
    assert r.outputs("b_retry") == ["the first attempt landed: nothing to retry"]
    assert r.final == ({"id": 3, "notes": "[B][A]"}, {"id": 5, "notes": "[B][A]"})


@pytest.mark.parametrize("db", [PG, SQLITE])
def test_id_order_has_no_deadlock_b_just_waits(db):
    r = play("swap-deadlock", "id-order", db)
    assert r.waits() == [("b_lock1", ("A",) if db == PG else ("the database lock",))]
    assert r.errors() == {}
    assert r.final == ({"id": 3, "notes": "[A][B]"}, {"id": 5, "notes": "[A][B]"})


def test_every_case_runs_on_both_backends_with_a_verdict(backend):
    for scenario in SCENARIOS.values():
        for variant in scenario.variants:
            r = Run(scenario, variant.name, db=backend).play()
            assert r.verdict is not None and r.verdict.text
