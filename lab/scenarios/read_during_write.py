"""read-during-write: a report reads while a swap is half done (frame 5.5).

Swap #1 moves Dr Adams to Monday PM (#5) and Dr Baker to Monday AM (#3): two UPDATEs in
one transaction. A coverage report reads both shifts before, during and after. It must
see both old or both new, never one of each. PostgreSQL's readers do not wait for
writers (MVCC). SQLite's rollback journal makes the writer's COMMIT wait for the
reader's open read; in WAL mode neither waits. The naive report reads the two shifts in
two statements: under READ COMMITTED the swap commits between them, and the report shows
Dr Adams on both shifts, Dr Baker on neither.
"""

from __future__ import annotations

from sqlalchemy import text

from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import COMMIT, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, step

READ = """SELECT a.id, p.name FROM assignment a JOIN person p ON p.id = a.person_id
          WHERE a.id IN (3, 5) ORDER BY a.id"""
MOVE = "UPDATE assignment SET person_id = {person}, source = 'manual' WHERE id = {id}"
OLD = "Dr Adams, Dr Baker"
NEW = "Dr Baker, Dr Adams"
# each report: the steps that read it (one statement, or the naive report's two)
REPORTS = (("r_read1",), ("r_read2",), ("r_read3",), ("r_shift3", "r_shift5"))


def report(s) -> str:
    return ", ".join(name for _, name in s.execute(text(READ)))


def shift(assignment_id: int):
    """Half of the naive report: one shift, in a statement of its own."""
    return lambda s: s.execute(text(
        "SELECT p.name FROM assignment a JOIN person p ON p.id = a.person_id"
        " WHERE a.id = :id"), {"id": assignment_id}).scalar_one()


def reports(result: RunResult) -> list[tuple[str, str]]:
    """(the report's last step, the pair it showed) for every report the run completed."""
    return [(steps[-1], ", ".join(out for st in steps for out in result.outputs(st)))
            for steps in REPORTS if all(result.outputs(st) for st in steps)]


def consistent_reads(result: RunResult) -> Verdict:
    """Each report shows both shifts before the swap or both after it, never a mix."""
    seen = reports(result)
    mixed = [(st, out) for st, out in seen if out not in (OLD, NEW)]
    if mixed:
        return Verdict(Outcome.ANOMALY, f"{mixed[0][0]} saw half a swap: {mixed[0][1]}")
    shown = "; ".join(f"{st}: {'old' if out == OLD else 'new'}" for st, out in seen)
    waits = result.waits()
    if waits:
        who = ", ".join(f"{st} waited for {', '.join(b)}" for st, b in waits)
        return Verdict(Outcome.WAITED, f"no read saw half a swap ({shown}); {who}")
    return Verdict(Outcome.FINE, f"no read saw half a swap and nobody waited ({shown})")


def _writer():
    return [step("w_move1", MOVE.format(person=5, id=3), "W: moves Dr Baker onto #3"),
            step("w_move2", MOVE.format(person=4, id=5), "W: moves Dr Adams onto #5"),
            step("w_commit", COMMIT, "W: commits the swap",
                 sqlite="W: commits; with a rollback journal it must wait for R's"
                        " open read (in WAL mode it need not)")]


SCENARIO = Scenario(
    name="read-during-write",
    title="Reading while a swap is half done",
    summary="A report reads two shifts mid-swap: old or new, never a mix; who waits differs.",
    frame="5.5",
    setup=None,
    final_state="SELECT id, person_id FROM assignment WHERE id IN (3, 5) ORDER BY id",
    variants=(
        Variant(
            "report",
            "R reads during W's swap and after it.",
            {"W": _writer(),
             "R": [step("r_read1", report, "R: reads both shifts mid-swap; does not wait"),
                   step("r_read2", report, "R: reads again in the same transaction"),
                   step("r_commit", COMMIT, "R: ends its read transaction"),
                   step("r_read3", report, "R: reads once more: the swap is in")]},
            "w_move1 r_read1 w_move2 w_commit r_read2 r_commit r_read3",
            consistent_reads,
            isolations=("read committed", "repeatable read"),
        ),
        Variant(
            "two-statements",
            "The naive report reads #3, then #5, in two statements; the swap commits between.",
            {"W": _writer(),
             "R": [step("r_shift3", shift(3), "R: reads shift #3 mid-swap: still Dr Adams"),
                   step("r_shift5", shift(5), "R: reads shift #5 in a second statement,"
                        " after W committed",
                        sqlite="R: reads shift #5; W's commit still waits for R's read lock"),
                   step("r_commit", COMMIT, "R: ends its report")]},
            "w_move1 r_shift3 w_move2 w_commit r_shift5 r_commit",
            consistent_reads,
            isolations=("read committed", "repeatable read"),
        ),
    ),
    matrix=(
        MatrixRow('dirty read of half a swap (G1)', 'report'),
    ),
    exercise=Prediction(
        "The same interleaving on SQLite (rollback journal): who waits?",
        (Choice("a", "R waits for W's uncommitted swap", lambda r: any(
                    s.startswith("r_") for s, _ in r.waits()),
                "R's reads need only a shared lock, which SQLite grants while W has merely"
                " reserved the write; R reads the old rows without waiting."),
         Choice("c", "W's COMMIT waits until R's read transaction ends",
                lambda r: "w_commit" in dict(r.waits()),
                "To commit, a rollback-journal writer needs the exclusive lock, and R's open"
                " read transaction holds a shared one. So the writer waits for the reader:"
                " the opposite of PostgreSQL, where readers never block writers."),
         Choice("b", "nobody waits: R sees the new rows before W commits",
                lambda r: not r.waits(),
                "SQLite never shows uncommitted rows to another connection, and its locks"
                " make someone wait here.")),
        play("read-during-write", db="sqlite")),
)
