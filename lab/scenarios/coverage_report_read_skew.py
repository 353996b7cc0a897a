"""coverage-report-read-skew: a report that never was true (G-single, read skew).

The Monday coverage report counts the supervising faculty of the morning, then of the
afternoon. Between its two reads a coordinator's change commits that moves Dr Baker
from the afternoon to the morning. Under READ COMMITTED each read takes a fresh
snapshot: the morning is read before the move, the afternoon after it, and Dr Baker is
counted nowhere. Under
REPEATABLE READ the whole report reads one snapshot and adds up.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from ..models import Assignment, Person
from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import (
    COMMIT, ISOLATION_LEVELS, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, step,
)
from ..seed import block_id

AM, PM = block_id(0, "AM"), block_id(0, "PM")
BAKER_PM = 5


def supervisors(block: int, label: str):
    def count(s) -> str:
        n = s.scalar(select(func.count()).select_from(Assignment).join(Person).where(
            Assignment.block_id == block, Person.kind == "faculty"))
        s.info.setdefault("counts", []).append(n)
        return f"{label}: {n} supervising faculty"

    return count


def move_baker(s) -> str:
    s.execute(update(Assignment).where(Assignment.id == BAKER_PM)
              .values(block_id=AM, rotation_template_id=1))
    return "Dr Baker moves from Monday PM to Monday AM"


def report_adds_up(result: RunResult) -> Verdict:
    """The report's total equals the faculty actually supervising Monday (2)."""
    total = sum(int(out.split(": ")[1].split()[0])
                for st in ("r_morning", "r_afternoon") for out in result.outputs(st))
    if total != 2:
        return Verdict(Outcome.ANOMALY, f"read skew: the report counts {total} supervising"
                       " faculty on Monday; there were 2 before the move and 2 after it")
    return Verdict(Outcome.FINE, "the report counts 2 supervisors: one consistent snapshot")


SCENARIO = Scenario(
    name="coverage-report-read-skew",
    title="A report that never was true",
    summary="A report reads two blocks around a committed move and counts Dr Baker nowhere.",
    frame="II",
    setup=None,
    final_state=f"""SELECT a.block_id, p.name FROM assignment a JOIN person p ON
                    p.id = a.person_id WHERE a.block_id IN ({AM}, {PM})
                    AND p.kind = 'faculty' ORDER BY a.block_id, p.name""",
    variants=(
        Variant("two-reads", "R reads the morning, W's move commits, R reads the afternoon.",
                {"R": [step("r_morning", supervisors(AM, "Monday AM"),
                            "R: counts the morning's supervisors"),
                       step("r_afternoon", supervisors(PM, "Monday PM"),
                            "R: counts the afternoon's, after the move committed",
                            sqlite="R: counts the afternoon's; W's commit is still waiting"),
                       step("r_commit", COMMIT, "R: ends the report")],
                 "W": [step("w_move", move_baker, "W: moves Dr Baker to the morning"),
                       step("w_commit", COMMIT, "W: commits",
                            sqlite="W: commits; R's open read makes it wait")]},
                "r_morning w_move w_commit r_afternoon r_commit", report_adds_up,
                isolations=ISOLATION_LEVELS),
    ),
    matrix=(
        MatrixRow('read skew (G-single)', 'two-reads'),
    ),
    exercise=Prediction(
        "The same interleaving on SQLite: what does the report count?",
        (Choice("a", "1 supervisor, as under READ COMMITTED on PostgreSQL: read skew", broke,
                "SQLite's reader holds its shared lock until the report ends, so W cannot"
                " commit the move in between."),
         Choice("c", "2: W's COMMIT waits for the report's read lock, so the report reads one"
                " consistent state", lambda r: not broke(r) and "w_commit" in dict(r.waits()),
                "In rollback-journal mode a writer needs the exclusive lock to commit, and an"
                " open read transaction blocks it: the report sees the world before the move,"
                " all of it."),
         Choice("b", "the report fails with SQLITE_BUSY", failed_with("SQLITE_BUSY", "r_"),
                "Readers never get SQLITE_BUSY from a writer that has not started committing;"
                " here it is the writer who has to wait.")),
        play("coverage-report-read-skew", db="sqlite")),
)
