"""swap-during-generation: a swap executes while a schedule generation runs (frame 5.2).

Dr Adams has an approved request to hand his Monday-morning clinic supervision to Dr
Chen. At the same moment a coordinator regenerates week 1. Without a generation lock,
the generation books Adams onto Monday morning again: the swap says "executed", yet
Adams still works the shift. With the lock, the swap is queued and runs once the
generation has ended, also when the generation is cancelled midway.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import COMMIT, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, step
from ..seed import FACULTY, block_id
from ..services import swaps, tasks
from .generation_steps import generator, start_generation

ADAMS, _, CHEN = FACULTY
SOURCE = 3  # Dr Adams supervising clinic, Monday AM
MONDAY_AM = block_id(0, "AM")


def setup(s: Session) -> None:
    swaps.request_swap(s, SOURCE, None, CHEN)


def _queued(s: Session) -> str:
    return "; ".join(swaps.run_queued_swaps(s)) or "no queued swaps"


def _generation_steps(locked: bool):
    return [
        step("g_start", start_generation(locked, cooperative=locked), "G: starts regenerating week 1"
             + (" and takes the generation lock" if locked else "")),
        step("g_batch1", generator("write_batch"), "G: writes its first 13 rows, Monday's included"
             + ("" if locked else "; waits for S's uncommitted swap"),
             sqlite="G: writes; S holds the write lock, so SQLite " + (
                 "refuses G at once; G rolls back and waits to record its failure" if locked
                 else "makes G wait")),
        step("g_batch2", generator("write_batch"), "G: writes the rest of the week"),
        step("g_finish", generator("finish"), "G: removes stale generated rows, marks the task done"),
        step("g_commit", COMMIT, "G: commits the new schedule" +
             (" and releases the lock" if locked else "")),
        step("g_queued", _queued, "G: runs the swaps queued while it held the lock"),
        step("g_commit2", COMMIT, "G: commits them"),
    ]


def _swap_steps(locked: bool):
    execute = (lambda s: swaps.execute_swap(s, 1)) if locked else \
        (lambda s: swaps.execute_swap_naive(s, 1))
    return [
        step("s_execute", execute,
             "S: meets the generation lock: queues swap #1" if locked
             else "S: executes swap #1: Monday AM goes from Adams to Chen",
             sqlite="S: " + ("sees the lock row: queues swap #1" if locked
                             else "executes swap #1 (SQLite: takes the database write lock)")),
        step("s_commit", COMMIT, "S: commits"),
    ]


FINAL = {
    "Monday AM clinic": f"""
        SELECT a.id, p.name AS person, a.source FROM assignment a JOIN person p
        ON p.id = a.person_id WHERE a.block_id = {MONDAY_AM} ORDER BY a.id""",
    "swap and task": """
        SELECT (SELECT status FROM swap_request WHERE id = 1) AS swap,
               (SELECT status FROM task ORDER BY id DESC LIMIT 1) AS task,
               (SELECT COUNT(*) FROM assignment a JOIN task t ON a.task_id = t.id
                WHERE t.status = 'cancelled') AS rows_of_cancelled_task""",
}


def _before_generation(result: RunResult) -> bool:
    """S committed before G's first step finished (on SQLite it waits for S's write lock):
    no race, one after the other."""
    kinds = [(e.kind, e.session, e.step) for e in result.events]
    committed = next((k for k, (kind, who, _) in enumerate(kinds)
                      if kind == "commit" and who == "S"), None)
    started = next(k for k, (kind, _, st) in enumerate(kinds)
                   if st == "g_start" and kind in ("complete", "error"))
    return committed is not None and committed < started


def swap_holds(result: RunResult) -> Verdict:
    """Invariant 6 and the swap's promise: an executed swap is in the final schedule."""
    people = [r["person"] for r in result.tables["Monday AM clinic"]]
    status = result.tables["swap and task"][0]
    if status["rows_of_cancelled_task"]:
        return Verdict(Outcome.ANOMALY, "a cancelled generation left rows behind")
    if status["swap"] == "executed" and "Dr Adams" in people and _before_generation(result):
        return Verdict(Outcome.FINE, "swap #1 committed before the generation started: the"
                       " generation then rebuilt the week, as a regeneration does (5.2 is about"
                       " a swap during a generation)")
    if status["swap"] == "executed" and "Dr Adams" in people:
        return Verdict(Outcome.ANOMALY, "swap #1 says executed, yet Dr Adams is still on Monday AM"
                       f" clinic: the generation booked him again ({', '.join(people)})")
    if status["swap"] == "executed" and "Dr Chen" in people:
        held = (f"the swap held: Dr Chen covers Monday AM, Dr Adams is off; the generation"
                f" ended {status['task']}")
        if result.errors():
            failed = ", ".join(f"{st} failed with {code}" for st, code in result.errors().items())
            return Verdict(Outcome.ABORTED, f"{held} ({failed}; the old week stands)")
        if result.waits():
            return Verdict(Outcome.WAITED, held)
        return Verdict(Outcome.FINE, f"{held}; the swap was queued, then ran")
    return Verdict(Outcome.ABORTED, f"swap #1 is {status['swap']}; generation"
                   f" {status['task']}: nothing was silently lost")


_PERMUTATION = "g_start s_execute g_batch1 s_commit g_batch2 g_finish g_commit g_queued g_commit2"

SCENARIO = Scenario(
    name="swap-during-generation",
    title="A swap during schedule generation",
    summary="A swap executed mid-generation vanishes; a generation lock queues it instead.",
    frame="5.2",
    setup=setup,
    final_state=FINAL,
    variants=(
        Variant("naive", "No generation lock: the generation books Adams back onto his"
                " swapped shift.", {"G": _generation_steps(False), "S": _swap_steps(False)},
                _PERMUTATION, swap_holds),
        Variant("generation-lock", "The generation holds a lock; the swap is queued and runs"
                " after it.", {"G": _generation_steps(True), "S": _swap_steps(True)},
                _PERMUTATION, swap_holds),
        Variant("cancelled-generation", "The generation is cancelled midway: the old week"
                " stays, and the queued swap still runs.",
                {"G": _generation_steps(True), "S": _swap_steps(True),
                 "C": [step("c_cancel", lambda s: tasks.request_cancel(s, 1),
                            "C: asks the generation to stop",
                            sqlite="C: asks the generation to stop (on SQLite it has"
                                   " already failed by now)"),
                       step("c_commit", COMMIT, "C: commits the request")]},
                "g_start s_execute g_batch1 s_commit c_cancel c_commit g_batch2 g_finish"
                " g_commit g_queued g_commit2", swap_holds),
    ),
    matrix=(MatrixRow("swap undone by a generation (app)", "naive", app=True),
            MatrixRow("fix: generation lock", "generation-lock", fix=True)),
    exercise=Prediction(
        "The naive case again (no generation lock), under REPEATABLE READ on PostgreSQL:"
        " how does it end?",
        (Choice("b", "as under READ COMMITTED: the generation books Dr Adams back onto his"
                " swapped shift", broke,
                "Not here. G works from the snapshot of its first statement, so when its finish"
                " step deletes the generated row S has since turned into Dr Chen's manual row,"
                " PostgreSQL refuses instead of deleting it."),
         Choice("a", "G fails with 40001 and rolls back: the old week stands and the swap"
                " holds", lambda r: failed_with("40001", "g_")(r) and not broke(r),
                "G's finish step deletes a row that S changed after G's snapshot was taken;"
                " under REPEATABLE READ that is a serialization failure (40001), so G rolls"
                " back, the task ends failed, and S's committed swap stands."),
         Choice("c", "S fails with 40001: the swap is lost and the generation wins",
                failed_with("40001", "s_"),
                "S commits first: it never meets a row G changed, so it has nothing to fail"
                " on. The one who must give way is the later writer, G.")),
        play("swap-during-generation", "naive", isolation="repeatable read")),
)
