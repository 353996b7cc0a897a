"""swap-race: two people want the same shift at once (frame 5.4, the auto-matcher race).

Dr Adams (assignment #3) and Resident One (assignment #1) both work Monday-morning
clinic, and both have an approved swap into Dr Baker's Monday-afternoon shift
(assignment #5). The original executor moves people without locking or re-checking:
the second swap runs into the unique (block, person) constraint and fails with a raw
23505, and its request stays "approved". The fixed executor locks both assignments in
id order and re-checks them: exactly one swap executes, and the other ends "rejected":
"assignment already swapped".
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..exercises.kinds import Fix
from ..runner import COMMIT, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, step
from ..seed import FACULTY, RESIDENTS
from ..services import swaps

ADAMS, BAKER, _ = FACULTY
RESIDENT_ONE = RESIDENTS[0]
ADAMS_AM, RESIDENT_AM, BAKER_PM = 3, 1, 5


def setup(s: Session) -> None:
    swaps.request_swap(s, ADAMS_AM, BAKER_PM, BAKER)  # swap #1
    swaps.request_swap(s, RESIDENT_AM, BAKER_PM, BAKER)  # swap #2


def _sessions(execute, naive: bool):
    def run(request_id: int):
        return lambda s: execute(s, request_id)

    return {
        "A": [step("a_execute", run(1), "A: executes swap #1, Adams <-> Baker" +
                   ("" if naive else "; locks #3 and #5 in id order")),
              step("a_commit", COMMIT, "A: commits")],
        "C": [step("c_execute", run(2), "C: executes swap #2, Resident One <-> Baker; " +
                   ("waits on the unique key A just took" if naive
                    else "waits for A's lock on #5, then re-checks it"),
                   sqlite="C: executes swap #2; A holds SQLite's write lock"),
              step("c_commit", COMMIT, "C: commits")],
    }


FINAL = {
    "swaps": "SELECT id, status, reason FROM swap_request ORDER BY id",
    "Baker's Monday PM (#5) and Monday AM": """
        SELECT a.id, p.name AS person FROM assignment a JOIN person p ON p.id = a.person_id
        WHERE a.id IN (1, 3, 5) ORDER BY a.id""",
}


def one_swap_wins(result: RunResult) -> Verdict:
    """Invariant 5: a shift moves once; the loser ends rejected with a clear reason."""
    status = {r["id"]: r for r in result.tables["swaps"]}
    executed = [i for i, r in status.items() if r["status"] == "executed"]
    if len(executed) > 1:
        return Verdict(Outcome.ANOMALY, "both swaps executed: shift #5 was given away twice")
    stuck = [i for i, r in status.items() if r["status"] == "approved"]
    if stuck:
        codes = ", ".join(f"{st} failed with {c}" for st, c in result.errors().items())
        return Verdict(Outcome.ANOMALY, f"swap #{stuck[0]} is still 'approved' after a raw database"
                       f" error ({codes}): the user gets a 500, the request hangs")
    loser = next(r for r in status.values() if r["status"] == "rejected")
    return Verdict(Outcome.WAITED if result.waits() else Outcome.FINE,
                   f"swap #{executed[0]} executed; swap #{loser['id']} rejected:"
                   f" {loser['reason']}")


SCENARIO = Scenario(
    name="swap-race",
    title="Two swaps want the same shift",
    summary="Two swaps race for one shift; only locking in id order plus a re-check picks one.",
    frame="5.4",
    setup=setup,
    final_state=FINAL,
    variants=(
        Variant("naive", "No lock, no re-check: the loser dies on a raw unique violation.",
                _sessions(swaps.execute_swap_naive, True), "a_execute c_execute a_commit"
                " c_commit", one_swap_wins),
        Variant("fixed", "Lock both assignments in id order, re-check, reject the loser.",
                _sessions(swaps.execute_swap, False), "a_execute c_execute a_commit"
                " c_commit", one_swap_wins),
    ),
    matrix=(
        MatrixRow("swap left 'approved' by a raw error (app)", 'naive', app=True),
    ),
    exercise=Fix(
        function="execute_swap",
        task="execute_swap(session, request_id) carries out an approved swap request: each"
             " assignment it names goes to the other person, and the request ends 'executed'."
             " When another swap took one of those shifts first, the request must end"
             " 'rejected' with a reason, never stay 'approved' behind a raw database error.",
        case=lambda execute: Variant("exercise", "Your executor for both swaps.",
                                     _sessions(execute, False), "a_execute c_execute a_commit"
                                     " c_commit", one_swap_wins)),
)
