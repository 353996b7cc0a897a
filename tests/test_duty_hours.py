"""duty-hours: invariant 8 (at most 6 days in a row, 320 h in 28 days) broken by write skew,
pinned per isolation level and backend: SQLSTATEs, who waited for whom, commit order and
Resident One's final shifts."""

from __future__ import annotations

import datetime as dt

import pytest

from lab.db import resolve
from lab.explorer import explore
from lab.runner import Outcome, Run
from lab.scenarios import SCENARIOS
from lab.scenarios.duty_hours import SCENARIO
from lab.services import duty_hours

PG, SQLITE = "embedded", "sqlite"
RC, RR, SER = "read committed", "repeatable read", "serializable"
WEEKDAYS = [f"2026-07-{d:02}" for d in range(6, 11)]  # Mon 6 to Fri 10 July, as seeded
SAT, SUN = "2026-07-11", "2026-07-12"


def play(case: str, isolation: str, db: str = PG, permutation: str | None = None):
    return Run(SCENARIOS["duty-hours"], case, isolation=isolation, db=db).play(permutation)


def days(r) -> list[str]:
    return [row["day"] for row in r.tables["Resident One"]]


# -- the rule itself ----------------------------------------------------------------------

def test_the_rule_allows_six_days_in_a_row_and_53_half_days_in_28_days():
    monday = dt.date(2026, 7, 6)
    week = [(monday + dt.timedelta(days=i), "AM") for i in range(6)]
    assert duty_hours.broken_rules(week) == []
    seventh = week + [(monday + dt.timedelta(days=6), "AM")]
    assert duty_hours.broken_rules(seventh) == [
        "7 days in a row (Mon 6 Jul - Sun 12 Jul), at most 6"]
    # hours: 53 half-days are 318 h, a 54th makes 324 h, over 320
    every = [(monday + dt.timedelta(days=i), t) for i in range(28) for t in ("AM", "PM")]
    assert duty_hours.busiest_window(every[:53]) == 318
    assert duty_hours.broken_rules(every[:53]) == [
        "27 days in a row (Mon 6 Jul - Sat 1 Aug), at most 6"]
    assert duty_hours.broken_rules(every[:54])[1:] == ["324 h in 28 days, at most 320"]
    # the window slides: 54 half-days spread over 29 days fit no 28-day window
    assert duty_hours.busiest_window(every[:53] + [(monday + dt.timedelta(days=28), "AM")]) \
        == 318


def test_six_days_in_a_row_leave_at_most_288_hours_in_28_days():
    """Why the story uses the days-in-a-row rule: one day off in every 7 leaves at most
    24 working days, 48 half-days, 288 h in 28 days, so 320 h can never be reached first."""
    monday = dt.date(2026, 7, 6)
    most = [(monday + dt.timedelta(days=i), t) for i in range(28) if i % 7 != 6
            for t in ("AM", "PM")]
    assert duty_hours.broken_rules(most) == []
    assert duty_hours.busiest_window(most) == 288 < duty_hours.MAX_HOURS


def test_matrix_rows_name_the_scenarios_cases():
    assert [(r.case, r.fix) for r in SCENARIO.matrix] == \
        [("check-then-add", False), ("lock-person-row", True)]
    assert all(SCENARIO.variant(r.case) for r in SCENARIO.matrix)


# -- check, then add: write skew ----------------------------------------------------------

def test_check_then_add_under_read_committed_on_postgresql_breaks_the_rule():
    r = play("check-then-add", RC)
    assert r.outputs("a_check") == ["sees 5 shifts; with Sat 11 Jul AM: at most 6 days in"
                                    " a row, 36 h in 28 days: allowed"]
    assert r.outputs("b_check") == ["sees 5 shifts; with Sun 12 Jul AM: at most 5 days in"
                                    " a row, 36 h in 28 days: allowed"]
    assert r.waits() == [] and r.errors() == {}
    assert r.commit_order() == ["A", "B"]
    assert days(r) == WEEKDAYS + [SAT, SUN]
    assert r.verdict.outcome == "anomaly"
    assert "7 days in a row (Mon 6 Jul - Sun 12 Jul)" in r.verdict.text


@pytest.mark.parametrize(("isolation", "errors", "committed", "booked"), [
    (RR, {}, ["A", "B"], [SAT, SUN]),  # snapshot isolation permits write skew
    (SER, {"b_commit": "40001"}, ["A"], [SAT]),  # SSI: the second committer fails
])
def test_check_then_add_above_read_committed_on_postgresql(isolation, errors, committed,
                                                           booked):
    r = play("check-then-add", isolation)
    assert r.errors() == errors and r.waits() == []
    assert r.commit_order() == committed
    assert days(r) == WEEKDAYS + booked
    assert r.verdict.outcome == ("anomaly" if isolation == RR else Outcome.ABORTED)


@pytest.mark.parametrize("isolation", [RC, RR, SER])
def test_check_then_add_on_sqlite_the_second_writer_fails_at_once(isolation):
    """B read in its transaction, A holds the write lock: SQLite refuses B's upgrade at
    once (no wait) rather than risk a deadlock, whatever level the run asks for."""
    r = play("check-then-add", isolation, SQLITE)
    assert r.waits() == []
    assert r.errors() == {"b_add": "SQLITE_BUSY"}
    assert r.commit_order() == ["A"]
    assert days(r) == WEEKDAYS + [SAT]
    assert r.verdict.outcome == Outcome.ABORTED


# -- the fix: lock the resident's row first -----------------------------------------------

def test_locking_the_resident_under_read_committed_makes_b_wait_and_the_rule_refuse(backend):
    r = play("lock-person-row", RC, backend)
    blocker = ("A",) if backend == PG else ("the database lock",)
    assert r.waits() == [("b_lock", blocker)]
    assert r.waited_for("b_lock") == blocker
    assert r.errors() == {"b_check": "duty-hours"}  # a business rule saying no, not an abort
    assert r.commit_order() == ["A"]
    assert days(r) == WEEKDAYS + [SAT]
    assert r.verdict.outcome == Outcome.WAITED  # the rule refused B: not an abort
    text = r.text()
    assert "ERROR duty-hours: Resident One on Sun 12 Jul would work 7 days in a row" in text
    # B's lock completes right after A's commit, before B's check starts
    order = [(e.kind, e.step) for e in r.events if e.kind in ("launch", "commit")
             or e.resumed]
    at = order.index(("commit", "a_commit"))
    assert order[at + 1:at + 3] == [("complete", "b_lock"), ("launch", "b_check")]


def test_locking_the_resident_under_repeatable_read_on_postgresql_does_not_help():
    """B waits for A, but its snapshot was taken when its locking SELECT started, before
    A committed; A only locked the person row, never updated it, so there is no 40001."""
    r = play("lock-person-row", RR)
    assert r.waits() == [("b_lock", ("A",))] and r.errors() == {}
    assert r.outputs("b_check")[0].startswith("sees 5 shifts")  # A's Saturday unseen
    assert r.commit_order() == ["A", "B"]
    assert days(r) == WEEKDAYS + [SAT, SUN]
    assert r.verdict.outcome == "anomaly"


def test_locking_the_resident_under_serializable_on_postgresql_aborts_b_at_its_insert():
    r = play("lock-person-row", SER)
    assert r.waits() == [("b_lock", ("A",))]
    assert r.outputs("b_check")[0].startswith("sees 5 shifts")  # the same old snapshot
    assert r.errors() == {"b_add": "40001"}
    assert r.commit_order() == ["A"]
    assert days(r) == WEEKDAYS + [SAT]


@pytest.mark.parametrize("isolation", [RR, SER])
def test_locking_the_resident_on_sqlite_is_the_same_at_every_level(isolation):
    r = play("lock-person-row", isolation, SQLITE)
    assert r.waits() == [("b_lock", ("the database lock",))]
    assert r.errors() == {"b_check": "duty-hours"}
    assert days(r) == WEEKDAYS + [SAT]


# -- every interleaving -------------------------------------------------------------------

@pytest.mark.parametrize(("db", "anomalies", "feasible"), [(PG, 18, 20), (SQLITE, 0, 20)])
def test_explore_check_then_add_under_read_committed(db, anomalies, feasible):
    found = explore(SCENARIO, "check-then-add", RC, resolve(db))
    assert (found.count("anomaly"), found.feasible) == (anomalies, feasible)
    if db == PG:  # only the two serial orders keep the rule
        assert found.count("fine") == 2
    else:
        assert found.count("aborted") == 18 and found.count("fine") == 2


def test_explore_lock_person_row_under_read_committed_holds(backend):
    found = explore(SCENARIO, "lock-person-row", RC, resolve(backend))
    assert found.orderings == 70 and found.feasible == 8  # B's lock waits for A
    assert found.count("anomaly") == 0
    assert (found.count("fine"), found.count("blocked, then fine")) == (2, 6)


def test_explore_lock_person_row_under_repeatable_read_on_postgresql():
    found = explore(SCENARIO, "lock-person-row", RR, resolve(PG))
    assert (found.count("anomaly"), found.feasible) == (6, 8)


# -- determinism --------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "permutation"), [
    ("check-then-add", "b_check a_check b_add a_add b_commit a_commit"),
    ("lock-person-row", "a_lock b_lock a_check a_add a_commit b_check b_add b_commit"),
])
def test_the_same_permutation_gives_the_same_trace(backend, case, permutation):
    first = play(case, RC, backend, permutation).text()
    assert play(case, RC, backend, permutation).text() == first
