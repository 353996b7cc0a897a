"""block-capacity-phantom: a rotation over capacity (phantom, predicate write skew).

Clinic takes at most two residents per half-day. On the second Monday morning Resident
One is booked. Two coordinators each count the clinic's residents (one, so there is
room) and each books another resident. Both commit: three residents in a clinic for
two. Row locks cannot help, because the row that conflicts does not exist yet.
SERIALIZABLE aborts one (40001); locking the block row first makes the second wait and
recount.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import (
    COMMIT, ISOLATION_LEVELS, MatrixRow, RunResult, Scenario, Variant, Verdict, judged, step,
)
from ..seed import CLINIC, RESIDENTS, block_id
from ..services import assignments, coverage

BLOCK = block_id(7, "AM")  # the second Monday morning


def setup(s: Session) -> None:
    assignments.book_naive(s, BLOCK, RESIDENTS[0], CLINIC, "primary")


def count(s: Session) -> str:
    s.info["seen"], s.info["max"] = coverage.residents_in(s, BLOCK, CLINIC)
    return f"sees {s.info['seen']} of {s.info['max']} clinic places taken"


def book(person_id: int):
    def book_if_room(s: Session) -> str:
        if s.info["seen"] >= s.info["max"]:
            return "clinic is full: books nobody"
        return assignments.book_naive(s, BLOCK, person_id, CLINIC, "primary")

    return book_if_room


def _session(x: str, who: str, person_id: int, locked: bool):
    steps = [step(f"{x}_lock", lambda s: coverage.lock_block(s, BLOCK),
                  f"{who}: locks the block row first")] if locked else []
    return steps + [step(f"{x}_count", count, f"{who}: counts clinic residents"),
                    step(f"{x}_book", book(person_id), f"{who}: books a resident if there is room"),
                    step(f"{x}_commit", COMMIT, f"{who}: commits")]


def within_capacity(result: RunResult) -> Verdict:
    """Invariant 3: a rotation never holds more than max_residents residents in a block."""
    booked = result.tables["clinic"][0]["residents"]
    return judged(result, booked > 2 and f"phantom: {booked} residents in a clinic for 2;"
                  " each count missed the row the other was inserting",
                  f"clinic holds {booked} of 2")


SCENARIO = Scenario(
    name="block-capacity-phantom",
    title="A rotation over capacity",
    summary="Two coordinators each count one free clinic place and both book it: a phantom.",
    frame="II",
    setup=setup,
    final_state={"clinic": f"""SELECT COUNT(*) AS residents FROM assignment a JOIN person p
                 ON p.id = a.person_id WHERE a.block_id = {BLOCK}
                 AND a.rotation_template_id = {CLINIC} AND p.kind = 'resident'"""},
    variants=(
        Variant("count-then-insert", "Count, then insert: only SERIALIZABLE catches the"
                " phantom.",
                {"A": _session("a", "A", RESIDENTS[1], False),
                 "B": _session("b", "B", RESIDENTS[2], False)},
                "a_count b_count a_book b_book a_commit b_commit", within_capacity,
                isolations=ISOLATION_LEVELS),
        Variant("lock-block-row", "Lock the parent block row, then count: B waits and"
                " recounts.",
                {"A": _session("a", "A", RESIDENTS[1], True),
                 "B": _session("b", "B", RESIDENTS[2], True)},
                "a_lock b_lock a_count a_book a_commit b_count b_book b_commit",
                within_capacity, isolations=ISOLATION_LEVELS),
    ),
    matrix=(
        MatrixRow('phantom (G2)', 'count-then-insert'),
        MatrixRow('fix: lock the block (capacity)', 'lock-block-row', fix=True),
    ),
    exercise=Prediction(
        "Both coordinators lock the block row first (lock-block-row), under REPEATABLE READ"
        " on PostgreSQL. Does the lock keep the clinic at two?",
        (Choice("b", "yes: B waits, recounts, and books nobody",
                lambda r: not broke(r) and not r.errors(),
                "B does wait, but its count comes from the snapshot taken when its locking"
                " SELECT started, before A committed."),
         Choice("a", "no: B waits, then counts from its old snapshot and books a third"
                " resident", broke,
                "Under REPEATABLE READ the snapshot is fixed at the first statement, which was"
                " the lock B waited on. A only locked the block row, it did not change it, so"
                " nothing fails, and B's count misses A's insert. Materialise the conflict"
                " with a write (an UPDATE of the block row) to get 40001 instead."),
         Choice("c", "B fails with 40001 after its wait", failed_with("40001"),
                "40001 needs a row that B writes or locks to have been *changed* after B's"
                " snapshot; A only locked the block row.")),
        play("block-capacity-phantom", "lock-block-row", isolation="repeatable read")),
)
