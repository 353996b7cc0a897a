"""swap-deadlock: two swap confirmations lock the same shifts in opposite order (5.5).

Coordinator A confirms swap #1 by locking shift #3, then #5; coordinator B confirms
swap #2 on the same shifts, #5 first. Each waits for the other: PostgreSQL finds the
cycle (40P01), rolls one back (the first to wait) and lets the other commit. The victim
retries and succeeds. Locking in the swap service's order (``swaps.lock_order``: by id)
removes the cycle: B simply waits for A. (Its permutation differs: with id order, B's
second lock cannot be issued while B still waits for its first.)
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..models import Assignment
from ..exercises.kinds import BREAKS, Fix
from ..runner import (
    COMMIT, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, judged, step,
)
from ..services.swaps import lock_assignments, lock_order


def _lock(*ids: int):
    return lambda s: f"locked #{', #'.join(map(str, lock_assignments(s, list(ids))))}"


def _confirm(who: str):
    def confirm(s: Session) -> str:
        s.execute(update(Assignment).where(Assignment.id.in_([3, 5]))
                  .values(notes=func.coalesce(Assignment.notes, "") + f"[{who}]"))
        return f"stamped #3 and #5 with [{who}]"

    return confirm


def _confirmed(s: Session, who: str) -> bool:
    notes = s.scalars(select(Assignment.notes).where(Assignment.id.in_([3, 5])))
    return all(f"[{who}]" in n for n in notes)


def _retry(who: str, first: int, second: int):
    """Retry only if the first attempt did not land: an idempotent retry, as a worker does."""
    x = who.lower()

    def retry_lock(s: Session) -> str:
        s.info["landed"] = _confirmed(s, who)
        return "the first attempt landed: nothing to retry" if s.info["landed"] else \
            _lock(*lock_order((first, second)))(s)

    def retry_stamp(s: Session) -> str:
        return "nothing to stamp" if s.info["landed"] else _confirm(who)(s)

    return [step(f"{x}_retry", retry_lock, f"{who}: if its stamps are missing, retries the"
                 " transaction, locking in id order"),
            step(f"{x}_stamp2", retry_stamp, f"{who}: stamps both shifts (if retrying)"),
            step(f"{x}_commit2", COMMIT, f"{who}: commits")]


def _sessions(a_order: tuple[int, int], b_order: tuple[int, int]):
    return {
        "A": [step("a_lock1", _lock(a_order[0]), f"A: locks shift #{a_order[0]}"),
              step("a_lock2", _lock(a_order[1]), f"A: locks shift #{a_order[1]}; waits for B"
                   if a_order != b_order else f"A: locks shift #{a_order[1]}",
                   sqlite=f"A: locks shift #{a_order[1]}: A already holds the database"
                          " write lock"),
              step("a_stamp", _confirm("A"), "A: stamps both shifts"),
              step("a_commit", COMMIT, "A: commits"),
              *_retry("A", *a_order)],
        "B": [step("b_lock1", _lock(b_order[0]), f"B: locks shift #{b_order[0]}" +
                   ("; waits for A" if a_order == b_order else ""),
                   sqlite="B: BEGIN IMMEDIATE: waits for A's database write lock"),
              step("b_lock2", _lock(b_order[1]), f"B: locks shift #{b_order[1]}" +
                   ("; closes the cycle" if a_order != b_order else ""),
                   sqlite=f"B: locks shift #{b_order[1]}; B must first stop waiting"
                          " for A's write lock"),
              step("b_stamp", _confirm("B"), "B: stamps both shifts"),
              step("b_commit", COMMIT, "B: commits"),
              *_retry("B", *b_order)],
    }


_RETRIES = " a_retry a_stamp2 a_commit2 b_retry b_stamp2 b_commit2"


RETRYABLE = ("40001", "40P01")


def both_confirmed(result: RunResult) -> Verdict:
    """Both confirmations land exactly once; a deadlock costs a retry, not a confirmation.

    A confirmation whose retry failed too, with 40001 or 40P01 (under REPEATABLE READ the
    retry that waited for the other one cannot lock what it committed), is not lost in
    silence: the coordinator is told, and must try once more. Lost is a confirmation
    missing with no error to say so, or one that landed twice."""
    notes = [r["notes"] for r in result.final]
    stamps = {who: min(n.count(f"[{who}]") for n in notes) for who in "AB"}
    errors = result.errors()
    told = {who: next((f"{st} failed with {code}" for st, code in errors.items()
                       if code in RETRYABLE and st in (f"{who.lower()}_retry",
                                                       f"{who.lower()}_stamp2")), None)
            for who in "AB"}
    if any(count > 1 or count == 0 and told[who] is None for who, count in stamps.items()):
        return Verdict(Outcome.ANOMALY, f"confirmations landed {stamps} times on shifts #3 and #5")
    if missing := [who for who, count in stamps.items() if count == 0]:
        return Verdict(Outcome.ABORTED, "; ".join(told[who] for who in missing) + ": its retry"
                       " failed too, so the coordinator is told and must try again")
    deadlocks = [st for st, code in result.errors().items() if code == "40P01"]
    if deadlocks:
        return Verdict(Outcome.ABORTED, f"deadlock: {deadlocks[0]} was the victim"
                       " (40P01), rolled back and retried; both confirmations landed once")
    if result.errors():
        failed = ", ".join(f"{st} failed with {c}" for st, c in result.errors().items())
        return Verdict(Outcome.ABORTED, f"{failed}; after the retry both confirmations"
                       " landed once")
    return Verdict(Outcome.WAITED if result.waits() else Outcome.FINE,
                   "no deadlock: B waited for A's locks; both confirmations landed once")


def _with_your_order(your_order):
    """A confirms on shifts [3, 5], B on [5, 3]; each locks them in your_order's order."""
    def session(x: str, shifts: list[int]):
        first, second = your_order(list(shifts))
        return [step(f"{x}_lock1", _lock(first), f"{x.upper()}: locks shift #{first}"),
                step(f"{x}_lock2", _lock(second), f"{x.upper()}: locks shift #{second}"),
                step(f"{x}_commit", COMMIT, f"{x.upper()}: commits its confirmation")]

    def both_commit(result: RunResult) -> Verdict:
        return judged(result, False, f"confirmed by {' and '.join(result.commit_order())}")

    return Variant("exercise", "Your lock order for both confirmations.",
                   {"A": session("a", [3, 5]), "B": session("b", [5, 3])},
                   "a_lock1 b_lock1 a_lock2 b_lock2 a_commit b_commit", both_commit)


SCENARIO = Scenario(
    name="swap-deadlock",
    title="A deadlock between two swap confirmations",
    summary="Locking two shifts in opposite order deadlocks (40P01); id order does not.",
    frame="5.5",
    setup=None,
    final_state="SELECT id, notes FROM assignment WHERE id IN (3, 5) ORDER BY id",
    variants=(
        Variant("opposite-order", "A locks #3 then #5, B locks #5 then #3: a deadlock; the"
                " victim retries.", _sessions((3, 5), (5, 3)),
                "a_lock1 b_lock1 a_lock2 b_lock2 a_stamp a_commit b_stamp b_commit" + _RETRIES,
                both_confirmed),
        Variant("id-order", "Both lock #3 before #5: B waits for A, no deadlock.",
                _sessions(lock_order((3, 5)), lock_order((5, 3))),
                "a_lock1 b_lock1 a_lock2 a_stamp a_commit b_lock2 b_stamp b_commit" + _RETRIES,
                both_confirmed, interchangeable=(("A", "B"),)),  # same shifts, same order
    ),
    matrix=(MatrixRow("deadlock between two confirmations (40P01)", "opposite-order"),
            MatrixRow("fix: lock in id order", "id-order", fix=True)),
    exercise=Fix(
        function="lock_order",
        task="lock_order(shifts) returns the two shift ids in the order a confirmation locks"
             " them. A confirms a swap as [3, 5], B as [5, 3]. No interleaving of the two"
             " may deadlock.",
        case=_with_your_order, breaks=BREAKS | {Outcome.DEADLOCK}),
)
