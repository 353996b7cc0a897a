"""The operations of a workload, each a transaction of steps calling the services.

Every operation ends by writing a row to ``workload_journal`` in its own transaction: the
row commits exactly when the operation did, so the invariants can ask what committed, and
a retry knows whether there is anything to retry. A business rule saying no (the clinic
is full, the last one on call, a swap already pending) is a decision, journalled like a
success; only a database error or a 409 leaves the operation undone.

The fixed case adds a ``retry`` step after each operation but the generation: if the
operation did not commit, it runs it again in one go, at most `ATTEMPTS` times.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..errors import ConflictError, DomainError
from ..models import Assignment, Person, Task
from ..runner import COMMIT, Step, step
from ..scenarios.generation_steps import generator, start_generation
from ..seed import CLINIC, START, block_id
from ..services import assignments, coverage, swaps

ATTEMPTS = 3
SWAPPED = 3  # Dr Adams supervising clinic on the first Monday morning
BOOKED_BLOCK = block_id(7, "AM")  # the second Monday morning's clinic
NIGHT = START
# each operation's possible argument: assignments edited, swap targets (faculty),
# residents booked, faculty leaving call; a generation takes none
ARGS: dict[str, tuple[int | None, ...]] = {"E": (1, 2), "S": (5, 6), "B": (1, 3),
                                           "C": (4, 5), "G": (None,)}

Action = Callable[[Session], str]


def steps(op_id: str, op: tuple[str, int | None], fixed: bool) -> list[Step]:
    """The steps of operation `op` (named op_id_load, op_id_save, ...), naive or fixed."""
    kind, arg = op
    if kind == "G":
        return _generation(op_id, fixed)
    actions = {"E": _edit, "S": _swap, "B": _book, "C": _call}[kind](op_id, arg, fixed)
    found = [step(f"{op_id}_{label}", action, f"{op_id}: {label}") for label, action in actions]
    found.append(step(f"{op_id}_commit", COMMIT, f"{op_id}: commits"))
    if fixed:
        found.append(step(f"{op_id}_retry", _retry(op_id, [a for _, a in actions]),
                          f"{op_id}: runs it again if it did not commit"))
    return found


def journal(s: Session, op_id: str, *, assignment_id: int | None = None,
            request_id: int | None = None, generations_running: int = 0) -> None:
    """The operation's decision, committed with it: what it edited, which swap it filed,
    how many generations it saw running when it executed that swap."""
    s.execute(text("INSERT INTO workload_journal (op, assignment_id, request_id,"
                   " generations_running) VALUES (:op, :a, :r, :g)"),
              {"op": op_id, "a": assignment_id, "r": request_id, "g": generations_running})


def _journalled(s: Session, op_id: str) -> bool:
    return s.execute(text("SELECT 1 FROM workload_journal WHERE op = :op"),
                     {"op": op_id}).first() is not None


def _retry(op_id: str, actions: list[Action]) -> Action:
    def again(s: Session) -> str:
        for attempt in range(ATTEMPTS + 1):
            done = _journalled(s, op_id)
            s.rollback()
            if done:
                return "committed" if attempt == 0 else f"committed on retry {attempt}"
            if attempt == ATTEMPTS:
                break
            try:
                for action in actions:
                    action(s)
                s.commit()
            except (DBAPIError, ConflictError):
                s.rollback()
        return f"gave up after {ATTEMPTS} retries"

    return again


def _edit(op_id: str, assignment_id: int, fixed: bool) -> list[tuple[str, Action]]:
    """Invariant 7: add a mark to the notes. Naive: a whole-form save of the copy loaded
    (a lost update under READ COMMITTED); fixed: the version check, 409 on a stale copy."""
    mark = f" +{op_id}"

    def load(s: Session) -> str:
        if fixed:
            s.info[op_id] = assignments.load_for_edit(s, assignment_id)
            return f"loaded version {s.info[op_id].version}"
        a = s.get_one(Assignment, assignment_id)
        s.info[op_id] = {f: getattr(a, f) for f in ("person_id", "role", "notes")}
        return f"loaded notes {a.notes!r}"

    def save(s: Session) -> str:
        if fixed:
            loaded = s.info[op_id]
            assignments.save_edit(s, loaded, notes=loaded.notes + mark)
        else:
            form = s.info[op_id]
            s.execute(update(Assignment).where(Assignment.id == assignment_id).values(
                {**form, "notes": form["notes"] + mark, "updated_at": func.current_timestamp()}))
        journal(s, op_id, assignment_id=assignment_id)
        return f"saved notes + {mark.strip()!r}"

    return [("load", load), ("save", save)]


def _swap(op_id: str, target: int, fixed: bool) -> list[tuple[str, Action]]:
    """Invariant 5: request a swap of Dr Adams's shift to `target`, then execute it.
    Naive: the original executor, no lock and no re-check of the owner."""

    def request(s: Session) -> str:
        try:
            s.info[op_id] = swaps.request_swap(s, SWAPPED, None, target).id
        except DomainError as exc:
            s.info[op_id] = None
            return f"refused: {exc}"
        return f"filed swap #{s.info[op_id]}"

    def execute(s: Session) -> str:
        request_id = s.info[op_id]
        running = s.scalar(select(func.count()).select_from(Task).where(
            Task.kind == "generate", Task.status.in_(("running", "cancelling"))))
        done = "nothing to execute" if request_id is None else \
            (swaps.execute_swap if fixed else swaps.execute_swap_naive)(s, request_id)
        journal(s, op_id, request_id=request_id, generations_running=running)
        return done

    return [("request", request), ("execute", execute)]


def _book(op_id: str, resident: int, fixed: bool) -> list[tuple[str, Action]]:
    """Invariants 2 and 3: book a resident if the clinic has room and enough supervisors.
    Naive: check, then insert (a phantom); fixed: claim the block row first."""

    def check(s: Session) -> str:
        if fixed:
            coverage.claim_block(s, BOOKED_BLOCK)
        residents, places = coverage.residents_in(s, BOOKED_BLOCK, CLINIC)
        faculty, _ = coverage.supervision(s, BOOKED_BLOCK)
        pgy1, senior = _levels(s)
        need = coverage.required_supervisors(pgy1 + (resident == 1), senior + (resident != 1))
        s.info[op_id] = residents < places and faculty >= need
        return f"sees {residents} of {places} places, {faculty} supervisors for {need} needed"

    def book(s: Session) -> str:
        if not s.info[op_id]:
            done = "no room, or too few supervisors: books nobody"
        else:
            try:
                done = (assignments.book if fixed else assignments.book_naive)(
                    s, BOOKED_BLOCK, resident, CLINIC, "primary")
            except DomainError as exc:
                done = f"refused: {exc}"
        journal(s, op_id)
        return done

    return [("check", check), ("book", book)]


def _levels(s: Session) -> tuple[int, int]:
    """(PGY-1, PGY-2/3) residents booked in the block."""
    levels = s.scalars(select(Person.pgy_level).join(Assignment).where(
        Assignment.block_id == BOOKED_BLOCK, Person.kind == "resident")).all()
    return sum(1 for x in levels if x == 1), sum(1 for x in levels if x and x > 1)


def _call(op_id: str, faculty: int, fixed: bool) -> list[tuple[str, Action]]:
    """Invariant 4: leave the first night's call if someone else stays on. Naive: check,
    then leave (write skew); fixed: claim the night's row first."""

    def check(s: Session) -> str:
        if fixed:
            coverage.claim_night(s, NIGHT)
        s.info[op_id] = coverage.others_on_call(s, NIGHT, faculty)
        return f"sees {s.info[op_id]} others on call"

    def leave(s: Session) -> str:
        try:
            done = coverage.leave_call(s, NIGHT, faculty, s.info[op_id])
        except DomainError as exc:
            done = f"stays: {exc}"
        journal(s, op_id)
        return done

    return [("check", check), ("leave", leave)]


def _generation(op_id: str, fixed: bool) -> list[Step]:
    """Invariant 6: regenerate week 1 in two batches. Naive: no generation lock, no
    cooperative cancel; fixed: the lock, and the swaps queued meanwhile run after it."""
    found = [step(f"{op_id}_start", start_generation(fixed, cooperative=fixed), f"{op_id}: starts"),
             step(f"{op_id}_batch1", generator("write_batch"), f"{op_id}: first batch"),
             step(f"{op_id}_batch2", generator("write_batch"), f"{op_id}: second batch"),
             step(f"{op_id}_finish", generator("finish"), f"{op_id}: finishes"),
             step(f"{op_id}_commit", COMMIT, f"{op_id}: commits")]
    if fixed:
        found += [step(f"{op_id}_queued", lambda s: "; ".join(swaps.run_queued_swaps(s))
                       or "no queued swaps", f"{op_id}: runs the queued swaps"),
                  step(f"{op_id}_commit2", COMMIT, f"{op_id}: commits them")]
    return found
