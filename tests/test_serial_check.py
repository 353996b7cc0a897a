"""The serial-order check: it agrees with isolation theory on the classic anomalies, it
is not fooled by generated ids or clock values, it says what it leaves out and where it
stops, and it explains, step by step, why a run is not serializable."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from lab import Run
from lab.models import Task
from lab.runner import COMMIT, Scenario, Variant, judged, step
from lab.runner.serial import MAX_ORDERS, Serializability
from lab.scenarios import get
from lab.spec import load_scenario, run_spec

SPECS = Path(__file__).resolve().parent.parent / "specs"
RC, RR, SER = "read committed", "repeatable read", "serializable"

# What theory says of the history PostgreSQL produces for each classic spec, per permutation:
# serializable (True) or not (False). Hermitage's table says which anomalies each level
# prevents; where a level prevents one anomaly by producing another, the history is judged.
THEORY = {
    # row locks order the writers: t1 -> t2 (RC), or t2 aborts with 40001 (RR, SER)
    "g0-dirty-write": {RC: [True], RR: [True], SER: [True]},
    # t1 rolled back; t2 read only committed data
    "g1a-aborted-read": {RC: [True], RR: [True], SER: [True]},
    # 1: one read, between t1's writes: t2 -> t1. 2: a second read after t1's commit is a
    # non-repeatable read under RC (10, then 11), one snapshot under RR and SER
    "g1b-intermediate-read": {RC: [True, False], RR: [True, True], SER: [True, True]},
    # no dirty read, so each reads the other's row before the other's write: a G2-item
    # cycle under RC and RR; SERIALIZABLE aborts t2
    "g1c-circular-information-flow": {RC: [False], RR: [False], SER: [True]},
    # RC: t2 overwrites t1's 11 with the 11 it computed from 10; RR/SER: 40001
    "p4-lost-update": {RC: [False], RR: [True], SER: [True]},
    # RC: t1 reads 10 and then 18; RR/SER: one snapshot, t1 -> t2
    "g-single-read-skew": {RC: [False], RR: [True], SER: [True]},
    # RC: the second predicate read sees t2's row; the write predicate deletes nothing.
    # RR/SER: one snapshot (1), 40001 (2)
    "pmp-predicate-many-preceders": {RC: [False, False], RR: [True, True], SER: [True, True]},
    # snapshot isolation permits write skew; SSI does not
    "g2-item-write-skew": {RC: [False], RR: [False], SER: [True]},
    "g2-anti-dependency-cycle": {RC: [False], RR: [False], SER: [True]},
}


def test_theory_covers_every_classic_spec():
    names = {p.stem for p in SPECS.glob("*.spec")}
    assert set(THEORY) <= names
    for name in THEORY:  # each runs under every level and on SQLite, with the check
        for variant in ("serial", "repeatable-read.serial", "serializable.serial",
                        "sqlite.serial"):
            assert (SPECS / "expected" / f"{name}.{variant}.out").exists(), (name, variant)


@pytest.mark.parametrize("level", [RC, RR, SER])
@pytest.mark.parametrize("name", sorted(THEORY))
def test_the_check_agrees_with_isolation_theory(name: str, level: str):
    results = run_spec(str(SPECS / f"{name}.spec"), isolation=level, serial_check=True)
    got = [r.serial.serializable for r in results]
    assert got == THEORY[name][level], [str(r.serial) for r in results]
    for r in results:
        if not r.serial.serializable:  # one explanation per serial order, naming a step
            assert len(r.serial.explanations) == 2
            assert all(x.startswith(("in t1 -> t2, ", "in t2 -> t1, "))
                       for x in r.serial.explanations)


def test_the_explanation_names_the_step_and_both_results():
    (r,) = run_spec(str(SPECS / "g-single-read-skew.spec"), serial_check=True)
    assert r.serial.explanations == (
        "in t2 -> t1, t1r1 would read (1, 12); here it read (1, 10)",
        "in t1 -> t2, t1r2 would read (2, 20); here it read (2, 18)")
    assert str(r.serial).splitlines()[0] == "serial check: NOT serializable"


def test_an_aborted_transaction_is_left_out_and_the_check_says_so():
    (r,) = run_spec(str(SPECS / "p4-lost-update.spec"), isolation=RR, serial_check=True)
    assert r.errors() == {"t2w": "40001"}
    assert r.serial.order == ("t1",)
    assert str(r.serial) == ("serial check: equivalent to t1 (the only committed transaction;"
                             " t2's aborted transaction is left out)")


def test_an_autocommit_statement_is_a_transaction_of_its_own():
    (r,) = run_spec(str(SPECS / "g0-dirty-write.spec"), serial_check=True)
    assert r.serial.order == ("t1", "t2.1", "t2.2")  # t2r ran after t2's COMMIT


def test_a_spec_without_invariant_is_judged_by_the_serial_check():
    spec = load_scenario(str(SPECS / "g2-item-write-skew.spec"))
    r = Run(spec, isolation=RR, db="embedded").play()
    assert r.verdict.outcome == "anomaly"
    assert r.verdict.text.startswith("not serializable: in t1 -> t2, t2r would read")
    r = Run(spec, isolation=SER, db="embedded").play()
    assert r.verdict.outcome == "aborted" and "equivalent to t1" in r.verdict.text


# -- ids and clocks --------------------------------------------------------------------------

def add_task(kind: str):
    """Insert a task; return its generated id, the server's clock and the kind."""
    def add(s: Session) -> dict:
        task_id = s.execute(insert(Task).values(kind=kind, status="pending", progress=0)
                            .returning(Task.id)).scalar_one()
        return {"id": task_id, "at": s.scalar(select(func.clock_timestamp())), "kind": kind}
    return add


def kinds(s: Session) -> str:
    return ", ".join(s.scalars(select(Task.kind).order_by(Task.kind)))


def data_only(value: dict) -> str:
    """The serial key: the kind is data; the id and the clock depend on timing."""
    return value["kind"]


def ids_scenario(serial_key) -> Scenario:
    """B inserts first (id 1), A second (id 2), A commits, B reads A's row and commits.
    Only A -> B explains B's read, and in A -> B the ids come out the other way round."""
    sessions = {"A": [step("a_add", add_task("A"), serial_key=serial_key),
                      step("a_commit", COMMIT)],
                "B": [step("b_add", add_task("B"), serial_key=serial_key),
                      step("b_kinds", kinds), step("b_commit", COMMIT)]}
    return Scenario("ids-by-commit-order", "ids", "ids", "test", None,
                    {"tasks": "SELECT kind, status FROM task ORDER BY kind"},
                    (Variant("v", "", sessions, "b_add a_add a_commit b_kinds b_commit",
                             lambda r: judged(r, None, "")),))


def test_generated_ids_and_clock_values_marked_by_serial_key_raise_no_false_alarm():
    r = Run(ids_scenario(data_only), db="embedded").play()
    assert [o.split()[0] for o in r.outputs("b_add") + r.outputs("a_add")] == ["id=1", "id=2"]
    assert r.outputs("b_kinds") == ["A, B"]
    assert r.serial.serializable and r.serial.order == ("A", "B")


def test_without_the_serial_key_the_ids_would_be_a_false_alarm():
    r = Run(ids_scenario(None), db="embedded").play()
    assert r.serial.serializable is False
    assert r.serial.explanations[0].startswith("in A -> B, a_add would return \"id=1 ")


def test_a_spec_state_leaves_out_generated_ids_and_timestamps(tmp_path: Path):
    """The task table's serial ids and timestamp columns follow the commit order; the
    final state the check compares leaves them out, so only A -> B decides."""
    add = ("INSERT INTO task (kind, status, progress, cancel_requested_at)"
           " VALUES ('{}', 'pending', 0, clock_timestamp());")
    path = tmp_path / "ids.spec"
    path.write_text(f"session a\nstep a_add {{ BEGIN; {add.format('A')} }}\nstep a_c {{ COMMIT; }}\n"
                    f"session b\nstep b_add {{ BEGIN; {add.format('B')} }}\n"
                    "step b_kinds { SELECT string_agg(kind, ',' ORDER BY kind) FROM task; }\n"
                    "step b_c { COMMIT; }\n"
                    "permutation b_add a_add a_c b_kinds b_c\n")
    (r,) = run_spec(str(path), serial_check=True)
    assert str(r.serial) == "serial check: equivalent to a -> b"


# -- what the check cannot judge --------------------------------------------------------------

def test_past_the_bound_the_check_is_skipped_and_says_why():
    sessions = {name: [step(f"{name.lower()}_read", "SELECT 1"), step(f"{name.lower()}_c", COMMIT)]
                for name in "ABCDE"}
    sc = Scenario("five", "five", "five", "test", None, "SELECT 1 AS one",
                  (Variant("v", "", sessions, " ".join(f"{n.lower()}_read {n.lower()}_c"
                                                       for n in "ABCDE"),
                           lambda r: judged(r, None, "")),))
    r = Run(sc, db="sqlite").play()
    assert r.serial.status is Serializability.UNCHECKED and r.serial.serializable is None
    assert str(r.serial) == (f"serial check: skipped: 5 committed transactions have 120 serial"
                             f" orders, more than the {MAX_ORDERS} the check replays")


def test_a_step_that_commits_inside_itself_is_not_judged():
    r = Run(get("swap-during-generation"), "naive", db="embedded").play()
    assert r.serial.serializable is None
    assert "step g_start commits inside its own code" in str(r.serial)


def test_a_retry_that_reuses_an_aborted_read_is_not_serializable():
    """The stale retry commits a write computed from what its aborted attempt read: no
    serial order of the committed transactions can produce it."""
    r = Run(get("serializable-retry"), "stale-retry", db="embedded").play()
    assert r.verdict.outcome == "anomaly" and r.serial.serializable is False
    assert r.serial.explanations[0].startswith("in A -> B, b_retry would raise KeyError: 'seen'")


def test_a_whole_form_save_that_kept_both_edits_is_still_not_serializable():
    """The ORM's partial update keeps both edits (the invariant holds), yet B loaded the
    form before A's commit and saved after it: no serial order gives B's load."""
    r = Run(get("concurrent-edit"), "partial-update", db="embedded").play()
    assert r.verdict.outcome == "blocked, then fine"
    assert r.serial.serializable is False
    assert r.serial.explanations[0].startswith("in A -> B, b_load would return")


def test_the_check_is_identical_from_run_to_run():
    first = Run(get("on-call-write-skew"), db="embedded").play()
    again = Run(get("on-call-write-skew"), db="embedded").play()
    assert first.serial == again.serial and first.text() == again.text()


def test_a_skip_locked_queue_is_correct_but_not_serializable():
    """The judges disagree by design: no request is approved twice, yet a worker that
    skips a held request and commits the next is explained by no serial order."""
    found = explore_spec("skip-locked", RC)
    assert found.count("anomaly") == 0 and found.count("stuck") == 0
    assert 0 < len(found.not_serializable) < len(found.interleavings)


def test_explore_judges_a_spec_without_invariant_by_the_serial_check():
    found = explore_spec("g2-item-write-skew", RC)
    assert found.count("anomaly") == len(found.not_serializable) > 0
    assert all(i.detail.startswith("not serializable: in ") for i in found.anomalies)


def explore_spec(name: str, level: str):
    from lab.explorer import explore

    return explore(load_scenario(str(SPECS / f"{name}.spec")), None, level, "embedded")


def test_the_flag_adds_one_line_per_permutation_and_nothing_else(capsys, monkeypatch):
    from lab import cli

    monkeypatch.chdir(SPECS.parent)
    monkeypatch.delenv("LAB_DATABASE_URL", raising=False)
    assert cli.main(["run", "specs/lost-update.spec"]) == 0
    plain = capsys.readouterr().out
    assert cli.main(["run", "specs/lost-update.spec", "--serial-check"]) == 0
    checked = capsys.readouterr().out.splitlines()
    heads = [i for i, ln in enumerate(checked) if ln.startswith("serial check: ")]
    assert len(heads) == plain.count("starting permutation:") == 3
    for i in heads:  # the last lines of a permutation's output: the next one starts
        j = i + 1
        while j < len(checked) and checked[j].startswith("  in "):
            j += 1
        assert j == len(checked) or (checked[j] == ""
                                     and checked[j + 1].startswith("starting permutation:"))
    kept = [ln for ln in checked if not ln.startswith(("serial check: ", "  in "))]
    assert "\n".join(kept) + "\n" == plain


def test_the_timeline_shows_the_serial_check_in_its_verdict_line():
    from lab import timeline

    (r,) = run_spec(str(SPECS / "g2-item-write-skew.spec"), isolation=RR, serial_check=True)
    title = timeline(r).legends[0].get_title().get_text().replace("\n", " ")
    assert title.startswith(f"verdict: {r.verdict}")
    assert title.endswith("serial check: NOT serializable")
