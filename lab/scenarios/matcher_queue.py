"""matcher-queue: three auto-matcher workers take approved swap requests.

``FOR UPDATE SKIP LOCKED``: each worker takes a different request, nobody waits, each
request is processed once. Plain ``FOR UPDATE``: the workers queue behind each other.
W2 waits for W1's row; when W1 commits, PostgreSQL re-checks the row, finds it no longer
approved and moves W2 on to the next request, which W3 then has to wait for. (Under
REPEATABLE READ and SERIALIZABLE the re-check is a 40001.) ``NOWAIT``: the second and
third workers fail at once with 55P03, which a UI can turn into "someone else is
processing this request".

Why W3 starts only after W1 commits in the ``FOR UPDATE`` case: two sessions queued on
the *same* row race inside PostgreSQL once the row is released (each re-locks the newest
version, and either may win), so no conductor could promise one order. Waits on
different rows are deterministic, and the runner's own tests cover several at once.

Processing a request is the swap service's job: ``swaps.execute_swap``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import SwapRequest
from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import (
    COMMIT, ISOLATION_LEVELS, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, step,
)
from ..seed import FACULTY
from ..services import swaps

CHEN = FACULTY[2]
WORKERS = ("W1", "W2", "W3")


def setup(s: Session) -> None:
    for assignment_id in (3, 5, 8):  # three supervising shifts handed to Dr Chen
        swaps.request_swap(s, assignment_id, None, CHEN)


def take(mode: str):
    """Take the oldest approved request (FOR UPDATE, SKIP LOCKED or NOWAIT)."""

    def take_next(s: Session) -> str:
        oldest = select(SwapRequest.id).where(SwapRequest.status == "approved") \
            .order_by(SwapRequest.id).limit(1)
        s.info["taken"] = s.scalar(oldest.with_for_update(
            skip_locked=mode == "skip-locked", nowait=mode == "nowait"))
        return f"took request #{s.info['taken']}" if s.info["taken"] else "found no request"

    return take_next


def process(s: Session) -> str:
    if not s.info.get("taken"):
        return "nothing to process"
    return swaps.execute_swap(s, s.info["taken"])


def _workers(mode: str):
    note = {"skip-locked": "skips rows others hold", "for-update": "waits for the worker ahead",
            "nowait": "refuses to wait: 55P03"}[mode]
    return {w: [step(f"{w.lower()}_take", take(mode), f"{w}: takes the next request" +
                     ("" if w == "W1" else f"; {note}"),
                     sqlite=f"{w}: takes the next request (SQLite drops the lock clause)"),
                step(f"{w.lower()}_process", process, f"{w}: processes it"),
                step(f"{w.lower()}_commit", COMMIT, f"{w}: commits")] for w in WORKERS}


def each_once(result: RunResult) -> Verdict:
    """Each request processed exactly once; report who waited and who got nothing."""
    done = [r["status"] for r in result.tables["requests"]].count("executed")
    taken = [out for w in WORKERS for out in result.outputs(f"{w.lower()}_take")]
    idle = sum(1 for out in taken if out == "found no request")
    errors = ", ".join(f"{st} failed with {c}" for st, c in result.errors().items())
    waits = ", ".join(f"{st} waited for {', '.join(b)}" for st, b in result.waits())
    detail = "; ".join(x for x in (waits, errors) if x)
    if idle and done < 3:
        return Verdict(Outcome.ANOMALY, f"{idle} worker(s) found the queue empty while"
                       f" {3 - done} request(s) still waited ({detail})")
    if errors:
        return Verdict(Outcome.ABORTED, f"{done} of 3 processed; {detail}")
    if waits:
        return Verdict(Outcome.WAITED, f"{done} of 3 processed once; {detail}")
    return Verdict(Outcome.FINE, "each of the 3 requests processed exactly once; nobody waited")


_PERMUTATION = ("w1_take w2_take w3_take w1_process w1_commit w2_process w2_commit"
                " w3_process w3_commit")

SCENARIO = Scenario(
    name="matcher-queue",
    title="Auto-matcher workers on one queue",
    summary="Three workers take swap requests: SKIP LOCKED, FOR UPDATE and NOWAIT compared.",
    frame="II",
    setup=setup,
    final_state={"requests": "SELECT id, status FROM swap_request ORDER BY id"},
    variants=tuple(
        Variant(mode, summary, _workers(mode), permutation, each_once,
                isolations=ISOLATION_LEVELS, interchangeable=(WORKERS,))
        for mode, summary, permutation in (
            ("skip-locked", "FOR UPDATE SKIP LOCKED: each worker gets its own request.",
             _PERMUTATION),
            ("for-update", "Plain FOR UPDATE: the workers queue behind each other.",
             "w1_take w2_take w1_process w1_commit w3_take w2_process w2_commit w3_process"
             " w3_commit"),
            ("nowait", "FOR UPDATE NOWAIT: the second and third fail fast with 55P03.",
             _PERMUTATION),
        )),
    matrix=(MatrixRow("queue workers wait in line (FOR UPDATE)", "for-update"),
            MatrixRow("queue workers fail fast (NOWAIT)", "nowait"),
            MatrixRow("fix: SKIP LOCKED", "skip-locked", fix=True)),
    exercise=Prediction(
        "Plain FOR UPDATE (the for-update case), under REPEATABLE READ on PostgreSQL: W2 waits"
        " for W1's row. What happens when W1 commits?",
        (Choice("a", "W2 moves on to the next request, as under READ COMMITTED",
                lambda r: not r.errors(),
                "Under READ COMMITTED PostgreSQL re-checks the row and moves on. Under REPEATABLE"
                " READ it cannot: the row changed after W2's snapshot."),
         Choice("b", "W2 fails with 40001: the row it waited for changed after its snapshot",
                failed_with("40001", "w2_"),
                "A REPEATABLE READ transaction may not lock a row that a concurrent"
                " transaction changed and committed after its snapshot: 40001. W2 must retry."
                " SKIP LOCKED avoids the wait, and with it the failure, at READ COMMITTED and"
                " REPEATABLE READ."),
         Choice("c", "W2 fails at once with 55P03", failed_with("55P03"),
                "55P03 is NOWAIT's error; plain FOR UPDATE waits.")),
        play("matcher-queue", "for-update", isolation="repeatable read")),
)
