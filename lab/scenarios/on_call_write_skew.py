"""on-call-write-skew: nobody is left on call (G2-item, write skew).

Dr Adams and Dr Baker are both on overnight call for the first night; one is enough.
Each checks that the other is still on call, then takes himself off. Both commit, and
nobody is on call. READ COMMITTED and REPEATABLE READ both allow it (snapshot isolation
permits write skew); SERIALIZABLE aborts one with 40001. Materialising the conflict, by
locking the night's coverage row first, makes the second wait and then see the truth
under READ COMMITTED, but not under REPEATABLE READ, where its snapshot is older than
the lock it waited for.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..exercises.kinds import Fix
from ..runner import (
    COMMIT, ISOLATION_LEVELS, MatrixRow, RunResult, Scenario, Variant, Verdict, judged, step,
)
from ..seed import FACULTY, START
from ..services import coverage

ADAMS, BAKER, _ = FACULTY
NIGHT = START
FINAL = {"on call": f"""SELECT p.name FROM call_assignment c JOIN person p ON p.id = c.person_id
                        WHERE c.date = '{NIGHT}' AND c.call_type = 'overnight' ORDER BY p.id"""}


def check(person_id: int):
    def check_others(s: Session) -> str:
        s.info["seen"] = coverage.others_on_call(s, NIGHT, person_id)
        return f"sees {s.info['seen']} other faculty on call"

    return check_others


def leave(person_id: int):
    return lambda s: coverage.leave_call(s, NIGHT, person_id, s.info["seen"])


def _session(x: str, who: str, person_id: int, locked: bool):
    steps = [step(f"{x}_lock", lambda s: coverage.lock_night(s, NIGHT),
                  f"{who}: locks the night's coverage row first")] if locked else []
    return steps + [
        step(f"{x}_check", check(person_id), f"{who}: checks that someone else is on call"),
        step(f"{x}_off", leave(person_id), f"{who}: takes himself off call"),
        step(f"{x}_commit", COMMIT, f"{who}: commits"),
    ]


def someone_on_call(result: RunResult) -> Verdict:
    """Invariant 4: each call night keeps at least one faculty member on call."""
    left = [r["name"] for r in result.tables["on call"]]
    return judged(result, not left and "write skew: both checks saw a colleague on call,"
                  " both left, and nobody is on call tonight", f"{', '.join(left)} stays on call")


def _with_your_leave(leave_call):
    """Both doctors leave call through the learner's leave_call(session, night, person_id)."""
    def session(x: str, who: str, person_id: int):
        return [step(f"{x}_leave", lambda s: leave_call(s, NIGHT, person_id),
                     f"{who}: your leave_call"), step(f"{x}_commit", COMMIT, f"{who}: commits")]

    return Variant("exercise", "Your leave_call for both doctors.",
                   {"A": session("a", "A", ADAMS), "B": session("b", "B", BAKER)},
                   "a_leave b_leave a_commit b_commit", someone_on_call)


SCENARIO = Scenario(
    name="on-call-write-skew",
    title="Nobody left on call",
    summary="Two on-call faculty each see the other and both leave: write skew.",
    frame="II",
    setup=None,
    final_state=FINAL,
    variants=(
        Variant("check-then-act", "Check, then leave: RC and RR allow write skew,"
                " SERIALIZABLE aborts one.",
                {"A": _session("a", "A", ADAMS, False), "B": _session("b", "B", BAKER, False)},
                "a_check b_check a_off b_off a_commit b_commit", someone_on_call,
                isolations=ISOLATION_LEVELS),
        Variant("lock-coverage-row", "Lock the night's row first: B waits, then sees A gone"
                " (READ COMMITTED).",
                {"A": _session("a", "A", ADAMS, True), "B": _session("b", "B", BAKER, True)},
                "a_lock b_lock a_check a_off a_commit b_check b_off b_commit",
                someone_on_call, isolations=ISOLATION_LEVELS),
    ),
    matrix=(
        MatrixRow('write skew (G2-item)', 'check-then-act'),
        MatrixRow('fix: lock the call night', 'lock-coverage-row', fix=True),
    ),
    exercise=Fix(
        function="leave_call",
        task="leave_call(session, night, person_id) takes a doctor off overnight call, but"
             " only while someone else stays on call that night; otherwise it refuses with"
             " CoverageError. Two doctors leaving at once must never leave the night empty,"
             " under any isolation level, on PostgreSQL or SQLite.",
        case=_with_your_leave),
)
