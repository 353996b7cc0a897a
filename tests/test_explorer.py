"""The explorer visits every feasible interleaving, classifies it by the invariant, prints
replayable anomalies, and says the same thing on every run."""

from __future__ import annotations

import itertools
import shlex

import pytest

from lab import cli
from lab.db import resolve
from lab.explorer import ProgressBar, explore, orderings
from lab.runner import Run
from lab.runner.stage import Stage
from lab.scenarios import get

RC = "read committed"


def test_two_sessions_of_three_steps_have_twenty_orderings_all_feasible_without_waits():
    found = explore(get("on-call-write-skew"), "check-then-act", RC, resolve("embedded"))
    assert found.orderings == 20
    perms = [i.permutation for i in found.interleavings]
    assert len(perms) == len(set(perms)) == 20  # nobody blocks: every ordering happens
    a, b = ["a_check", "a_off", "a_commit"], ["b_check", "b_off", "b_commit"]
    expected = {p for p in itertools.permutations(a + b)
                if [s for s in p if s in a] == a and [s for s in p if s in b] == b}
    assert set(perms) == expected
    assert found.count("anomaly") == 18  # write skew unless one commits before the other checks
    assert all(i.outcome == "fine" for i in found.interleavings
               if i.permutation in (tuple(a + b), tuple(b + a)))


def test_blocking_makes_some_orderings_impossible():
    """B's save waits for A's row lock, so B cannot commit before A does (and vice versa)."""
    found = explore(get("concurrent-edit"), "whole-object-save", RC, resolve("embedded"))
    assert found.orderings == 20
    assert len(found.interleavings) == 14
    for i in found.interleavings:
        at = {s: k for k, s in enumerate(i.permutation)}
        assert not at["a_save"] < at["b_save"] < at["b_commit"] < at["a_commit"]
        assert not at["b_save"] < at["a_save"] < at["a_commit"] < at["b_commit"]
    waited = [i for i in found.interleavings if i.outcome != "fine" or "save" in i.detail]
    assert found.count("anomaly") == 12 and waited


def test_sqlite_feasibility_follows_its_own_locking():
    found = explore(get("concurrent-edit"), "whole-object-save", RC, resolve("sqlite"))
    assert found.orderings == 20 and found.feasible == 20  # nobody waits: all can happen
    assert found.count("anomaly") == 0 and found.count("aborted") == 18
    # a transaction that failed runs nothing more: its steps are played once for every
    # place they could take (explorer.md#steps-of-a-failed-transaction)
    assert len(found.interleavings) == 14


@pytest.mark.parametrize("db", ["embedded", "sqlite"])
def test_a_reused_stage_plays_exactly_like_a_fresh_database(db):
    """The explorer's reset must be invisible: same trace as a run on a new database."""
    scenario = get("block-capacity-phantom")
    variant = scenario.variant("count-then-insert")
    perms = ["a_count b_count a_book b_book a_commit b_commit",
             "a_count a_book a_commit b_count b_book b_commit",
             "b_count a_count b_book a_book b_commit a_commit"]
    stage = Stage(resolve(db), list(variant.sessions), RC, timeout=5, reusable=True)
    try:
        reused = [Run(scenario, variant.name, isolation=RC, stage=stage).play(p).text()
                  for p in perms * 2]
    finally:
        stage.close()
    fresh = [Run(scenario, variant.name, isolation=RC, db=db).play(p).text() for p in perms]
    assert reused == fresh * 2


def explore_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["explore", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explore_output_is_identical_across_runs_and_replays_each_anomaly(capsys):
    args = ("concurrent-edit", "--case", "whole-object-save", "--isolation", "all",
            "--db", "postgresql,sqlite")
    code, first, err = explore_cli(capsys, *args)
    assert code == 0, err
    assert explore_cli(capsys, *args)[1] == first
    assert "20 orderings of the steps" in first
    rows = [ln for ln in first.splitlines()
            if ln.startswith(("embedded", "SQLite")) and ln.split()[-1].isdigit()]
    assert len(rows) == 6
    replays = [ln.strip() for ln in first.splitlines() if ln.strip().startswith("python -m lab")]
    assert len(replays) == 12  # the RC anomalies; RR and SER abort instead
    argv = shlex.split(replays[0])[3:]
    assert cli.main(argv) == 0
    assert "ANOMALY: lost update" in capsys.readouterr().out


def test_explore_runs_a_spec_file_and_every_case(tmp_path, capsys):
    spec = tmp_path / "skew.spec"
    spec.write_text("""
session a
step a1 { BEGIN; SELECT count(*) FROM call_assignment; }
step a2 { DELETE FROM call_assignment WHERE person_id = 4; }
step a3 { COMMIT; }
session b
step b1 { BEGIN; SELECT count(*) FROM call_assignment; }
step b2 { DELETE FROM call_assignment WHERE person_id = 5; }
step b3 { COMMIT; }
invariant "nobody on call" { SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM call_assignment) }
""")
    code, out, err = explore_cli(capsys, str(spec), "--isolation", "read committed,serializable")
    assert code == 0, err
    rows = [ln for ln in out.splitlines() if ln.startswith("embedded") and ln[-1].isdigit()]
    counts = {("serializable" if "serializable" in ln.split()[3] else RC): ln.split()[-8:]
              for ln in rows}
    # feasible, fine, blocked-then-fine, aborted, deadlock, anomaly, stuck, not serializable:
    # nothing checks, so both always delete; SERIALIZABLE aborts one unless the two ran one
    # after the other. Under READ COMMITTED only the two serial orders are serializable:
    # in every other, each count saw the other's row
    assert counts[RC] == ["20", "0", "0", "0", "0", "20", "0", "18"]
    assert counts["serializable"] == ["20", "0", "0", "18", "0", "2", "0", "0"]


@pytest.mark.parametrize("args, message", [
    (["no-such-scenario"], "unknown scenario"),
    (["concurrent-edit", "--isolation", "chaos"], "unknown isolation level"),
    (["concurrent-edit", "--db", "mysql://x"], ""),
    (["concurrent-edit", "--case", "nope"], "has no case"),
])
def test_explore_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = explore_cli(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err


def test_progress_bar_draws_only_on_a_terminal():
    class Tty:
        def __init__(self, tty: bool):
            self.text, self.tty = "", tty

        def isatty(self) -> bool:
            return self.tty

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    found = explore(get("swap-race"), "naive", RC, resolve("sqlite"))
    for tty in (True, False):
        stream = Tty(tty)
        bar = ProgressBar("swap-race", stream)
        bar(found)
        bar.done()
        assert ("6 of at most 6" in stream.text) == tty


def test_orderings_is_the_multinomial():
    assert orderings([3, 3]) == 20 and orderings([3, 3, 3]) == 1680 and orderings([7, 2]) == 36


def test_two_sessions_queued_for_one_row_are_flagged_not_passed_off_as_deterministic():
    """W3 queueing behind W2 for the row W1 holds: PostgreSQL picks who goes first."""
    found = explore(get("matcher-queue"), "for-update", RC, resolve("embedded"))
    queued = [i for i in found.interleavings if i.queued]
    assert queued and len(queued) < len(found.interleavings)
    catalog = Run(get("matcher-queue"), "for-update").play()  # one waiter per row
    deadlock = Run(get("swap-deadlock"), "opposite-order").play()  # a cycle, not a queue
    for result in (catalog, deadlock):
        assert result.waits() and not any("queued for the same lock" in n for n in result.notes)


def test_limit_stops_early_and_says_so(capsys):
    code, out, err = explore_cli(capsys, "matcher-queue", "--case", "skip-locked",
                                 "--limit", "5", "--db", "sqlite")
    assert code == 0, err
    row = next(ln for ln in out.splitlines() if ln.startswith("SQLite") and ln[-1].isdigit())
    # 5 played, each standing for at least the 3! renamings of the interchangeable workers
    # (and more where a failed transaction's skipped steps could have gone elsewhere)
    first = explore(get("matcher-queue"), "skip-locked", RC, resolve("sqlite"), limit=5)
    assert len(first.interleavings) == 5 and first.feasible >= 30
    assert row.split()[-8] == f"{first.feasible}+" and "stopped at --limit" in out
    assert "5 played" in out
