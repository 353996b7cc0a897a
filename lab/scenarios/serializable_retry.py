"""serializable-retry: doing SERIALIZABLE right.

The on-call write skew under SERIALIZABLE: Dr Baker's transaction fails with 40001. A
correct retry runs the *whole* transaction again: it re-reads, sees that Dr Adams has
left, and refuses to leave too. A naive retry repeats only the write, reusing the count
it read before the failure; the new transaction reads nothing, conflicts with nothing,
commits, and nobody is on call. Retries are bounded and also cover 40P01 (and, on
SQLite, SQLITE_BUSY).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import (
    COMMIT, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, context, step,
)
from ..seed import FACULTY
from ..services import coverage
from .on_call_write_skew import FINAL, NIGHT, check, leave, someone_on_call

ADAMS, BAKER, _ = FACULTY
RETRYABLE = ("40001", "40P01", "SQLITE_BUSY")
MAX_ATTEMPTS = 3


def retry(correct: bool):
    def retry_leave(s: Session) -> str:
        failed = s.info.get("failed")
        if failed not in RETRYABLE:
            return "no retry needed"
        if s.info.setdefault("attempts", 1) >= MAX_ATTEMPTS:
            return f"gave up after {MAX_ATTEMPTS} attempts"
        s.info["attempts"] += 1
        if correct:
            s.info["seen"] = coverage.others_on_call(s, NIGHT, BAKER)  # re-read everything
        return (f"attempt {s.info['attempts']} after {failed}: " +
                ("re-reads: " if correct else "reuses its old read: ") +
                f"{s.info['seen']} other faculty on call; " +
                coverage.leave_call(s, NIGHT, BAKER, s.info["seen"]))

    return retry_leave


def remember_failure(s: Session) -> str:
    """What the application's except-block sees: the code of the failed commit."""
    s.info["failed"] = context(s).last_error or "none"
    return f"the transaction failed with: {s.info['failed']}"


def _sessions(correct: bool):
    return {
        "A": [step("a_check", check(ADAMS), "A: checks that someone else is on call"),
              step("a_off", leave(ADAMS), "A: takes himself off call"),
              step("a_commit", COMMIT, "A: commits first")],
        "B": [step("b_check", check(BAKER), "B: checks that someone else is on call"),
              step("b_off", leave(BAKER), "B: takes himself off call"),
              step("b_commit", COMMIT, "B: commits: 40001",
                   sqlite="B: commits (if its DELETE got through)"),
              step("b_catch", remember_failure, "B: the application catches the failure"),
              step("b_retry", retry(correct), "B: retries: " + (
                  "the whole transaction, reads included" if correct
                  else "only the write, with the count it read before")),
              step("b_commit2", COMMIT, "B: commits the retry")],
    }


def retried_right(result: RunResult) -> Verdict:
    verdict = someone_on_call(result)
    if verdict.outcome is Outcome.ANOMALY and "reuses its old read" in " ".join(result.outputs("b_retry")):
        return Verdict(Outcome.ANOMALY, "the naive retry reused a stale read: its new transaction"
                       " read nothing, so SERIALIZABLE had nothing to object to, and"
                       " nobody is on call")
    return verdict


SCENARIO = Scenario(
    name="serializable-retry",
    title="Retrying SERIALIZABLE transactions",
    summary="After 40001 a retry must re-read everything; reusing old reads brings the bug back.",
    frame="II",
    setup=None,
    final_state=FINAL,
    variants=(
        Variant("correct-retry", "Retry the whole transaction, bounded, on 40001 and 40P01.",
                _sessions(True), "a_check b_check a_off b_off a_commit b_commit b_catch"
                " b_retry b_commit2", retried_right, isolations=("serializable",)),
        Variant("stale-retry", "Retry only the write with the old count: write skew again.",
                _sessions(False), "a_check b_check a_off b_off a_commit b_commit b_catch"
                " b_retry b_commit2", retried_right, isolations=("serializable",)),
    ),
    matrix=(MatrixRow("write skew after a stale retry (app)", "stale-retry", app=True),
            MatrixRow("fix: retry the whole transaction", "correct-retry", fix=True)),
    exercise=Prediction(
        "The correct retry, run under REPEATABLE READ instead of SERIALIZABLE, on PostgreSQL:"
        " is someone still on call at the end?",
        (Choice("b", "yes: B's commit fails with 40001 and the retry re-reads",
                failed_with("40001"),
                "REPEATABLE READ does not detect write skew: nothing fails, so there is"
                " nothing to retry."),
         Choice("a", "no: nothing fails under REPEATABLE READ, the retry never runs, and"
                " nobody is on call", lambda r: broke(r) and not r.errors(),
                "Snapshot isolation lets both transactions commit: each deleted a different"
                " row. A retry loop only helps where the database reports the conflict;"
                " for write skew that means SERIALIZABLE, or a materialised conflict."),
         Choice("c", "B waits for A", lambda r: bool(r.waits()),
                "The two doctors delete different rows, and plain reads take no locks:"
                " nobody waits.")),
        play("serializable-retry", "correct-retry", isolation="repeatable read")),
)
