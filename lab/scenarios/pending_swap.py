"""pending-swap: one open swap request per assignment (frame 5.4).

Dr Adams asks twice for a swap of the same shift (two browser tabs). A partial unique
index on open requests makes the second wait for the first, then refuses it with a clear
domain error instead of a second request that could execute twice.
"""

from __future__ import annotations

from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import COMMIT, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, step
from ..seed import FACULTY
from ..services import swaps

_, BAKER, CHEN = FACULTY
ADAMS_AM = 3


def one_open_swap(result: RunResult) -> Verdict:
    """Invariant 5: at most one open swap request per assignment, refused clearly."""
    open_ = result.tables["open requests"][0]["open_requests"]
    if open_ > 1:
        return Verdict(Outcome.ANOMALY, f"{open_} open swap requests for assignment #3")
    codes = result.errors()
    if any(c != "swap-pending" for c in codes.values()):
        return Verdict(Outcome.ANOMALY, f"a raw database error reached the user: {codes}")
    if codes:
        return Verdict(Outcome.ABORTED, "one open request; the second was refused:"
                       " 'already has a pending swap request'")
    return Verdict(Outcome.FINE, "one open request")


def _request(target: int):
    return lambda s: f"swap #{swaps.request_swap(s, ADAMS_AM, None, target).id} requested"


SCENARIO = Scenario(
    name="pending-swap",
    title="One open swap request per assignment",
    summary="Two swap requests for one shift at once; a partial unique index refuses one.",
    frame="5.4",
    setup=None,
    final_state={"open requests": """SELECT COUNT(*) AS open_requests FROM swap_request
                 WHERE source_assignment_id = 3 AND status IN ('pending', 'approved')"""},
    variants=(
        Variant("partial-unique-index", "Dr Adams asks twice (two tabs): the second request"
                " waits for the first, then is refused.",
                {"A": [step("a_request", _request(CHEN), "A: requests a swap of #3 to Dr Chen"),
                       step("a_commit", COMMIT, "A: commits")],
                 "B": [step("b_request", _request(BAKER), "B: requests a swap of #3 to Dr"
                            " Baker; waits on A's index entry, then is refused",
                            sqlite="B: requests; A holds SQLite's write lock"),
                       step("b_commit", COMMIT, "B: commits")]},
                "a_request b_request a_commit b_commit", one_open_swap),
    ),
    matrix=(MatrixRow("fix: one open request per shift (unique index)", "partial-unique-index",
                      fix=True),),
    exercise=Prediction(
        "The same two requests on SQLite, which has no row locks: what happens to the second"
        " request?",
        (Choice("a", "B waits for A's database write lock, then the partial unique index"
                " refuses it: 'already has a pending swap request'",
                lambda r: r.error_of("b_request") == "swap-pending" and bool(r.waits()),
                "SQLite allows one writer at a time, so B's insert waits in SQLite's busy"
                " handler until A commits; then the index (the same partial unique index on"
                " both backends) sees A's open request and refuses B."),
         Choice("b", "B fails at once with SQLITE_BUSY", failed_with("SQLITE_BUSY"),
                "B's transaction has not read anything yet, so it can simply wait for the"
                " write lock; SQLite refuses at once only a transaction that already holds a"
                " read lock and wants to write."),
         Choice("c", "both requests are stored: SQLite does not enforce partial indexes",
                broke, "SQLite supports partial indexes (CREATE UNIQUE INDEX ... WHERE),"
                " and the lab creates the same index on both backends.")),
        play("pending-swap", db="sqlite")),
)
