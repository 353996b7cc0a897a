"""Catalog II: each anomaly pinned under READ COMMITTED, REPEATABLE READ and SERIALIZABLE,
as PostgreSQL documents them (snapshot isolation permits write skew; SSI prevents it),
and what SQLite does with the same steps."""

from __future__ import annotations

import pytest

from lab.runner import Outcome, Run
from lab.scenarios import SCENARIOS

PG, SQLITE = "embedded", "sqlite"
RC, RR, SER = "read committed", "repeatable read", "serializable"


def play(name: str, case: str, isolation: str, db: str = PG):
    return Run(SCENARIOS[name], case, isolation=isolation, db=db).play()


def outcome(r) -> tuple[str, dict, list]:
    return r.verdict.outcome, r.errors(), r.waits()


# -- write skew: nobody on call ----------------------------------------------------------

@pytest.mark.parametrize(("isolation", "expected"), [
    (RC, ("anomaly", {}, [])),
    (RR, ("anomaly", {}, [])),  # snapshot isolation permits write skew
    (SER, (Outcome.ABORTED, {"b_commit": "40001"}, [])),  # SSI does not
])
def test_on_call_write_skew_by_isolation_level(isolation, expected):
    r = play("on-call-write-skew", "check-then-act", isolation)
    assert outcome(r) == expected
    assert r.outputs("a_check") == r.outputs("b_check") == ["sees 1 other faculty on call"]
    assert [row["name"] for row in r.tables["on call"]] == ([] if isolation != SER
                                                           else ["Dr Baker"])


@pytest.mark.parametrize(("isolation", "expected"), [
    (RC, (Outcome.WAITED, {"b_off": "coverage"}, [("b_lock", ("A",))])),
    # B's snapshot predates the lock it waited for: FOR UPDATE alone does not help in RR
    (RR, ("anomaly", {}, [("b_lock", ("A",))])),
    (SER, (Outcome.ABORTED, {"b_off": "40001"}, [("b_lock", ("A",))])),
])
def test_locking_the_coverage_row_by_isolation_level(isolation, expected):
    assert outcome(play("on-call-write-skew", "lock-coverage-row", isolation)) == expected


def test_on_call_on_sqlite():
    r = play("on-call-write-skew", "check-then-act", RC, SQLITE)
    assert outcome(r) == (Outcome.ABORTED, {"b_off": "SQLITE_BUSY"}, [])
    r = play("on-call-write-skew", "lock-coverage-row", RC, SQLITE)
    assert outcome(r) == (Outcome.WAITED, {"b_off": "coverage"},
                          [("b_lock", ("the database lock",))])


# -- phantom: a rotation over capacity ---------------------------------------------------

@pytest.mark.parametrize(("isolation", "expected", "booked"), [
    (RC, ("anomaly", {}, []), 3),
    (RR, ("anomaly", {}, []), 3),
    (SER, (Outcome.ABORTED, {"b_commit": "40001"}, []), 2),
])
def test_capacity_phantom_by_isolation_level(isolation, expected, booked):
    r = play("block-capacity-phantom", "count-then-insert", isolation)
    assert outcome(r) == expected
    assert r.tables["clinic"] == ({"residents": booked},)


@pytest.mark.parametrize(("isolation", "expected"), [
    (RC, (Outcome.WAITED, {}, [("b_lock", ("A",))])),
    (RR, ("anomaly", {}, [("b_lock", ("A",))])),
    (SER, (Outcome.ABORTED, {"b_book": "40001"}, [("b_lock", ("A",))])),
])
def test_locking_the_block_row_by_isolation_level(isolation, expected):
    r = play("block-capacity-phantom", "lock-block-row", isolation)
    assert outcome(r) == expected
    if isolation == RC:
        assert r.outputs("b_count") == ["sees 2 of 2 clinic places taken"]


def test_capacity_on_sqlite():
    assert outcome(play("block-capacity-phantom", "count-then-insert", RC, SQLITE)) == \
        (Outcome.ABORTED, {"b_book": "SQLITE_BUSY"}, [])


# -- read skew: the coverage report ------------------------------------------------------

@pytest.mark.parametrize(("isolation", "counts", "verdict"), [
    (RC, ["Monday AM: 1 supervising faculty", "Monday PM: 0 supervising faculty"], "anomaly"),
    (RR, ["Monday AM: 1 supervising faculty", "Monday PM: 1 supervising faculty"], "fine"),
    (SER, ["Monday AM: 1 supervising faculty", "Monday PM: 1 supervising faculty"], "fine"),
])
def test_read_skew_by_isolation_level(isolation, counts, verdict):
    r = play("coverage-report-read-skew", "two-reads", isolation)
    assert r.outputs("r_morning") + r.outputs("r_afternoon") == counts
    assert r.verdict.outcome == verdict
    assert r.waits() == [] and r.commit_order()[0] == "W"


def test_read_skew_on_sqlite_the_writer_waits_for_the_report():
    r = play("coverage-report-read-skew", "two-reads", RC, SQLITE)
    assert r.waits() == [("w_commit", ("the database lock",))]
    assert r.commit_order() == ["R", "W"] and r.verdict.outcome == "fine"


# -- supervision ratio across tables -----------------------------------------------------

@pytest.mark.parametrize(("case", "isolation", "expected"), [
    ("check-then-act", RC, ("anomaly", {}, [])),
    ("check-then-act", RR, ("anomaly", {}, [])),
    ("check-then-act", SER, (Outcome.ABORTED, {"b_commit": "40001"}, [])),
    ("lock-block-row", RC, (Outcome.WAITED, {"b_act": "ratio"}, [("b_lock", ("A",))])),
    ("lock-block-row", RR, ("anomaly", {}, [("b_lock", ("A",))])),
    ("lock-block-row", SER, (Outcome.ABORTED, {"b_act": "40001"}, [("b_lock", ("A",))])),
])
def test_supervision_ratio(case, isolation, expected):
    r = play("supervision-ratio", case, isolation)
    assert outcome(r) == expected
    faculty = r.tables["Monday PM"][0]["faculty"]
    assert faculty == 1  # Dr Chen left in every case; what differs is the PGY-1


# -- the matcher queue: three workers ----------------------------------------------------

def statuses(r) -> list[str]:
    return [row["status"] for row in r.tables["requests"]]


@pytest.mark.parametrize("isolation", [RC, RR])
def test_skip_locked_each_request_once_nobody_waits(isolation):
    r = play("matcher-queue", "skip-locked", isolation)
    assert [r.outputs(f"w{i}_take")[0] for i in (1, 2, 3)] == \
        ["took request #1", "took request #2", "took request #3"]
    assert r.waits() == [] and r.errors() == {}
    assert statuses(r) == ["executed"] * 3


def test_skip_locked_under_serializable_aborts_the_later_workers():
    r = play("matcher-queue", "skip-locked", SER)
    assert r.errors() == {"w2_process": "40001", "w3_process": "40001"}
    assert statuses(r) == ["executed", "approved", "approved"]


def test_plain_for_update_makes_the_workers_queue_behind_each_other():
    r = play("matcher-queue", "for-update", RC)
    assert r.waits() == [("w2_take", ("W1",)), ("w3_take", ("W2",))]
    assert [r.outputs(f"w{i}_take")[0] for i in (1, 2, 3)] == \
        ["took request #1", "took request #2", "took request #3"]
    assert r.commit_order() == ["W1", "W2", "W3"]
    assert statuses(r) == ["executed"] * 3


@pytest.mark.parametrize("isolation", [RR, SER])
def test_plain_for_update_turns_into_40001_above_read_committed(isolation):
    r = play("matcher-queue", "for-update", isolation)
    assert r.errors() == {"w2_take": "40001"}  # W3 starts after W1's commit: a new snapshot
    assert statuses(r) == ["executed", "executed", "approved"]


@pytest.mark.parametrize("isolation", [RC, RR, SER])
def test_nowait_fails_fast_with_55p03(isolation):
    r = play("matcher-queue", "nowait", isolation)
    assert r.waits() == []
    assert r.errors() == {"w2_take": "55P03", "w3_take": "55P03"}


def test_matcher_on_sqlite_drops_the_lock_clauses():
    r = play("matcher-queue", "skip-locked", RC, SQLITE)
    assert [r.outputs(f"w{i}_take")[0] for i in (1, 2, 3)] == ["took request #1"] * 3
    assert r.errors() == {"w2_process": "SQLITE_BUSY", "w3_process": "SQLITE_BUSY"}


# -- retrying SERIALIZABLE ---------------------------------------------------------------

@pytest.mark.parametrize("db", [PG, SQLITE])
def test_correct_retry_rereads_and_refuses(db):
    r = play("serializable-retry", "correct-retry", SER, db)
    assert "re-reads: 0 other faculty on call" not in " ".join(r.outputs("b_retry"))
    assert r.error_of("b_retry") == "coverage"
    assert [row["name"] for row in r.tables["on call"]] == ["Dr Baker"]


@pytest.mark.parametrize("db", [PG, SQLITE])
def test_stale_retry_brings_the_write_skew_back(db):
    r = play("serializable-retry", "stale-retry", SER, db)
    assert "reuses its old read: 1 other faculty on call" in r.outputs("b_retry")[0]
    assert r.tables["on call"] == ()
    assert r.verdict.outcome == "anomaly"


@pytest.mark.parametrize("isolation", [RC, RR])
def test_below_serializable_there_is_nothing_to_retry_and_the_skew_stays(isolation):
    r = play("serializable-retry", "correct-retry", isolation)
    assert r.errors() == {}
    assert r.outputs("b_retry") == ["no retry needed"]
    assert r.tables["on call"] == () and r.verdict.outcome == "anomaly"


def test_supervision_ratio_on_sqlite():
    r = play("supervision-ratio", "check-then-act", RC, SQLITE)
    assert outcome(r) == (Outcome.ABORTED, {"b_act": "SQLITE_BUSY"}, [])
    r = play("supervision-ratio", "lock-block-row", RC, SQLITE)
    assert outcome(r) == (Outcome.WAITED, {"b_act": "ratio"},
                          [("b_lock", ("the database lock",))])


def test_sqlite_waiter_freed_by_another_waiter_is_recorded_in_the_same_settle():
    """W2's error lets W1's COMMIT finish, which in turn frees W3: both completions land
    right after w2_process, before w2_commit starts, however loaded the machine is."""
    r = play("matcher-queue", "for-update", RC, SQLITE)
    order = [(e.kind, e.step) for e in r.events if e.kind in ("launch", "commit")
             or e.resumed]
    at = order.index(("launch", "w2_process"))
    assert order[at + 1:at + 5] == [("complete", "w1_commit"), ("commit", "w1_commit"),
                                     ("complete", "w3_take"), ("launch", "w2_commit")]
