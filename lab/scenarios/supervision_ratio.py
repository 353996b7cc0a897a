"""supervision-ratio: an invariant across tables.

Monday afternoon: Resident Three (PGY-3) on inpatient, supervised by Dr Baker and Dr
Chen; one supervisor is enough. Coordinator A lets Dr Chen go (one left, still enough).
Coordinator B adds Resident One, a PGY-1 (two residents need two supervisors, and there
are two). Each check passes on its own; together they leave one supervisor for two.
SERIALIZABLE aborts one; locking the block row first makes them queue.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ..models import Assignment
from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import (
    COMMIT, ISOLATION_LEVELS, MatrixRow, RunResult, Scenario, Variant, Verdict, judged, step,
)
from ..seed import FACULTY, INPATIENT, RESIDENTS, block_id
from ..services import assignments, coverage
from ..errors import DomainError

BLOCK = block_id(0, "PM")
CHEN = FACULTY[2]


class RatioError(DomainError):
    code = "ratio"


def setup(s: Session) -> None:
    assignments.book_naive(s, BLOCK, CHEN, INPATIENT, "supervising")


def check(s: Session) -> str:
    faculty, need = coverage.supervision(s, BLOCK)
    s.info["faculty"], s.info["need"] = faculty, need
    return f"sees {_supervisors(faculty)}, {need} required"


def release_chen(s: Session) -> str:
    if s.info["faculty"] - 1 < s.info["need"]:
        raise RatioError("Dr Chen is needed: too few supervisors without him")
    s.execute(delete(Assignment).where(Assignment.block_id == BLOCK,
                                       Assignment.person_id == CHEN))
    return "Dr Chen released (one supervisor left, enough for one PGY-3)"


def add_pgy1(s: Session) -> str:
    need = coverage.required_supervisors(1, 1)
    if s.info["faculty"] < need:
        raise RatioError(f"a PGY-1 needs {need} supervisors here")
    return assignments.book_naive(s, BLOCK, RESIDENTS[0], INPATIENT, "primary") + \
        f" Resident One (PGY-1): {s.info['faculty']} supervisors for {need} required"


def _session(x: str, who: str, act, note: str, locked: bool):
    steps = [step(f"{x}_lock", lambda s: coverage.lock_block(s, BLOCK),
                  f"{who}: locks the block row first")] if locked else []
    return steps + [step(f"{x}_check", check, f"{who}: checks the supervision ratio"),
                    step(f"{x}_act", act, note), step(f"{x}_commit", COMMIT, f"{who}: commits")]


FINAL = {"Monday PM": f"""SELECT COUNT(*) FILTER (WHERE p.kind = 'faculty') AS faculty,
                          COUNT(*) FILTER (WHERE p.pgy_level = 1) AS pgy1,
                          COUNT(*) FILTER (WHERE p.pgy_level > 1) AS senior
                          FROM assignment a JOIN person p ON p.id = a.person_id
                          WHERE a.block_id = {BLOCK}"""}


def ratio_holds(result: RunResult) -> Verdict:
    """Invariant 2: faculty >= ceil(PGY-1 / 2) + ceil(PGY-2/3 / 4), and at least one."""
    row = result.tables["Monday PM"][0]
    need = coverage.required_supervisors(row["pgy1"], row["senior"])
    return judged(result, row["faculty"] < need and f"{_supervisors(row['faculty'])} for"
                  f" residents needing {need}: each change passed its own check",
                  f"{_supervisors(row['faculty'])}, {need} required")


def _supervisors(n: int) -> str:
    return f"{n} supervisor{'' if n == 1 else 's'}"


def _sessions(locked: bool):
    return {"A": _session("a", "A", release_chen, "A: releases Dr Chen", locked),
            "B": _session("b", "B", add_pgy1, "B: adds Resident One, a PGY-1", locked)}


SCENARIO = Scenario(
    name="supervision-ratio",
    title="An invariant across tables",
    summary="One coordinator removes a supervisor while another adds a PGY-1: both checks pass.",
    frame="II",
    setup=setup,
    final_state=FINAL,
    variants=(
        Variant("check-then-act", "Each checks the ratio, then acts: only SERIALIZABLE"
                " catches it.", _sessions(False),
                "a_check b_check a_act b_act a_commit b_commit", ratio_holds,
                isolations=ISOLATION_LEVELS),
        Variant("lock-block-row", "Both lock the block row first, so they queue and recheck.",
                _sessions(True), "a_lock b_lock a_check a_act a_commit b_check b_act b_commit",
                ratio_holds, isolations=ISOLATION_LEVELS),
    ),
    matrix=(
        MatrixRow('write skew across tables (G2)', 'check-then-act'),
        MatrixRow('fix: lock the block (supervision)', 'lock-block-row', fix=True),
    ),
    exercise=Prediction(
        "Both coordinators lock the block row first, under SERIALIZABLE on PostgreSQL. What"
        " happens to B?",
        (Choice("a", "B waits, then its check refuses the PGY-1 (the ratio rule says no)",
                failed_with("ratio"),
                "B's check would refuse under READ COMMITTED; under SERIALIZABLE B's snapshot"
                " is older than A's commit, so its check still sees two supervisors."),
         Choice("c", "B waits for A's lock, then fails with 40001", failed_with("40001", "b_"),
                "B's snapshot predates A's commit, so its check passes; but SERIALIZABLE"
                " tracks what B read, sees that A's committed delete changed it, and aborts B"
                " when it writes. The invariant holds, at the price of a retry."),
         Choice("b", "both commit: one supervisor for two residents", broke,
                "SERIALIZABLE never lets this write skew commit.")),
        play("supervision-ratio", "lock-block-row", isolation="serializable")),
)
