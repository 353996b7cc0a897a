"""The original scheduling backend's concurrency suite, by its own names, made real.

Its tests/integration/test_concurrent_operations.py had five classes and nine tests.
Threads slept to make an order; the assertions were "result is not None"; nothing could
fail. Each test here keeps its name and plays its frame's lab scenario through the
conductor, then asserts who waited for whom, the errors' codes, the commit order, the
final rows and the invariant's verdict.

Every test runs several ways (its parameters):

* ``fixed``: the lab's fix on the embedded PostgreSQL. None of the frame's expectations
  break.
* ``naive``: the original code. The same expectations, checked by the same helper,
  catch the race; the parameter lists which ones break.
* ``...-sqlite``: what SQLite really does. It is not always what the original claimed.

docs/concepts/old-suite.md maps each test to its scenario and notebook.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy.orm import Session

from lab import Outcome, Run, RunResult
from lab.db import open_run_database, resolve
from lab.models import Assignment, Person
from lab.runner import ErrorKind
from lab.scenarios import edit_steps, read_during_write, swap_race

PG, SQLITE = "embedded", "sqlite"
DB_LOCK = "the database lock"  # SQLite's blocker: its busy handler cannot say who holds it
ABORTED, ANOMALY, FINE, WAITED = Outcome.ABORTED, Outcome.ANOMALY, Outcome.FINE, Outcome.WAITED


# -- the original fixtures, read from the lab's seeded schedule ------------------------

@dataclass(frozen=True)
class Named:
    """A person or a rotation template: its id and its name."""

    id: int
    name: str


@dataclass(frozen=True)
class BlockRow:
    id: int
    date: dt.date
    time_of_day: str

    @property
    def label(self) -> str:
        return f"{self.date:%A} {self.time_of_day}"


@dataclass(frozen=True)
class AssignmentRow:
    id: int
    block_id: int
    person_id: int
    rotation_template_id: int


@dataclass(frozen=True)
class ConcurrentEditScenario:
    """The assignment the edit races change (#1: Resident One, Monday-morning clinic).
    `faculty_a` holds it, B hands it to `faculty_b`. Residents in the lab's story; the
    field names are the original's."""

    assignment: AssignmentRow
    faculty_a: Named
    faculty_b: Named
    block: BlockRow
    template: Named


@dataclass(frozen=True)
class SwapScenario:
    """The two shifts the swap races move: Dr Adams' Monday AM (#3), Dr Baker's Monday PM (#5)."""

    faculty_a: Named
    faculty_b: Named
    assignment_a: AssignmentRow
    assignment_b: AssignmentRow
    block_a: BlockRow
    block_b: BlockRow


def _rows(a: Assignment) -> tuple[AssignmentRow, Named, BlockRow]:
    return (AssignmentRow(a.id, a.block_id, a.person_id, a.rotation_template_id),
            Named(a.person.id, a.person.name),
            BlockRow(a.block.id, a.block.date, a.block.time_of_day))


@pytest.fixture(scope="module")
def seeded() -> Iterator[Session]:
    """A session on a fresh copy of the seeded schedule every run starts from."""
    db = open_run_database(resolve(SQLITE))
    try:
        with Session(db.engine) as session:
            yield session
    finally:
        db.close()


@pytest.fixture(scope="module")
def concurrent_edit_scenario(seeded: Session) -> ConcurrentEditScenario:
    a = seeded.get_one(Assignment, edit_steps.ASSIGNMENT_ID)
    assignment, holder, block = _rows(a)
    new = seeded.get_one(Person, edit_steps.B_PERSON_ID)
    return ConcurrentEditScenario(assignment, holder, Named(new.id, new.name), block,
                                  Named(a.rotation_template.id, a.rotation_template.name))


@pytest.fixture(scope="module")
def swap_scenario(seeded: Session) -> SwapScenario:
    assignment_a, faculty_a, block_a = _rows(seeded.get_one(Assignment, swap_race.ADAMS_AM))
    assignment_b, faculty_b, block_b = _rows(seeded.get_one(Assignment, swap_race.BAKER_PM))
    return SwapScenario(faculty_a, faculty_b, assignment_a, assignment_b, block_a, block_b)


# -- playing a frame, and what every way of playing it must show -----------------------

@dataclass(frozen=True)
class Way:
    """One way of playing a frame, and the facts its trace must show."""

    case: str
    db: str
    waits: list[tuple[str, tuple[str, ...]]]
    errors: dict[str, str]
    commits: list[str]
    outcome: Outcome
    broken: list[str]  # the frame's expectations this way breaks: none for a fix
    outputs: dict[str, list[str]] = field(default_factory=dict)  # what chosen steps showed
    scenario: str = ""  # a naive twin from another scenario than the test's own
    isolation: str | None = None
    permutation: str | None = None


def way(param_id: str, **facts):
    """A test parameter: `param_id` names it in the node id, e.g. [naive-postgresql]."""
    return pytest.param(Way(**facts), id=param_id)


def play(scenario: str, w: Way) -> RunResult:
    """The conductor plays the case step by step; no sleep decides anything."""
    return Run(w.scenario or scenario, w.case, isolation=w.isolation, db=w.db).play(w.permutation)


def assert_trace(r: RunResult, w: Way) -> None:
    assert r.waits() == w.waits, r.text()
    assert r.errors() == w.errors, r.text()
    assert r.commit_order() == w.commits, r.text()
    for step, shown in w.outputs.items():
        assert r.outputs(step) == shown, r.text()
    assert r.verdict.outcome is w.outcome, r.verdict


def broken(expectations: dict[str, bool]) -> list[str]:
    """The expectations that do not hold, in the order the frame states them."""
    return [what for what, holds in expectations.items() if not holds]


def first_read(r: RunResult, session: str) -> str:
    return next(e.detail for e in r.events
                if e.session == session and e.kind == "complete" and e.detail)


def waited_for(r: RunResult, session: str, blocker: str) -> bool:
    return any(e.kind == "wait" and e.session == session and e.blockers == (blocker,)
               for e in r.events)


# -- frame 5.1 ----------------------------------------------------------------------------

A_NOTES = edit_steps.A_NOTES


def broken_edit(r: RunResult, edit: ConcurrentEditScenario) -> list[str]:
    """Frame 5.1: A's save wins; B's stale save is refused (409); B reloads, sees A's
    change at version 2, and its retry lands."""
    row, reload = r.final[0], r.outputs("b_reload")
    return broken({
        "A's note survives": row["notes"] == A_NOTES,
        "B's stale save is refused, not applied": "b_save" in r.errors(),
        "B reloads and sees A's note at version 2":
            reload == [f"notes={A_NOTES!r} person={edit.faculty_a.name!r} version=2"],
        f"B's retry hands the shift to {edit.faculty_b.name}":
            row["person"] == edit.faculty_b.name,
    })


def broken_locking(r: RunResult, edit: ConcurrentEditScenario) -> list[str]:
    """The original's claim for FOR UPDATE: B waits, runs after A, and no update is lost."""
    row = r.final[0]
    return broken({
        "B waits for A's row lock": waited_for(r, "B", "A"),
        "B reads A's note before it saves": A_NOTES in first_read(r, "B"),
        "both changes are in the row":
            (row["notes"], row["person"]) == (A_NOTES, edit.faculty_b.name),
    })


class TestConcurrentAssignmentEdit:
    """Frame 5.1: two users edit assignment #1, A its notes, B its person."""

    @pytest.mark.parametrize("w", [
        way("fixed-postgresql", case="version-check", db=PG, waits=[("b_save", ("A",))],
            errors={"b_save": "409"}, commits=["A", "B"], outcome=ABORTED, broken=[]),
        way("compare-and-set-postgresql", case="compare-and-set", db=PG,
            waits=[("b_save", ("A",))], errors={"b_save": "409"}, commits=["A", "B"],
            outcome=ABORTED, broken=[]),
        # a form PUT writes every field back: B's stale copy erases A's note
        way("naive-postgresql", case="whole-object-save", db=PG, waits=[("b_save", ("A",))],
            errors={}, commits=["A", "B"], outcome=ANOMALY,
            broken=["A's note survives", "B's stale save is refused, not applied",
                    "B reloads and sees A's note at version 2"]),
        # the original's own ORM edits: only changed columns are written, so nothing is
        # lost here, and nothing is detected either; "last write wins" never happened
        way("original-orm-edits-postgresql", case="partial-update", db=PG,
            waits=[("b_save", ("A",))], errors={}, commits=["A", "B"], outcome=WAITED,
            broken=["B's stale save is refused, not applied",
                    "B reloads and sees A's note at version 2"]),
        # a reader cannot become a writer while A writes: SQLITE_BUSY at once, no wait
        way("fixed-sqlite", case="version-check", db=SQLITE, waits=[],
            errors={"b_save": "SQLITE_BUSY"}, commits=["A", "B"], outcome=ABORTED,
            broken=[]),
        way("naive-sqlite", case="whole-object-save", db=SQLITE, waits=[],
            errors={"b_save": "SQLITE_BUSY"}, commits=["A"], outcome=ABORTED,
            broken=["B reloads and sees A's note at version 2",
                    "B's retry hands the shift to Resident Three"]),
    ])
    def test_concurrent_assignment_edit_with_separate_sessions(self, concurrent_edit_scenario, w):
        r = play("concurrent-edit", w)
        assert r.final[0]["id"] == concurrent_edit_scenario.assignment.id
        assert broken_edit(r, concurrent_edit_scenario) == w.broken
        assert_trace(r, w)

    @pytest.mark.parametrize("w", [
        way("fixed-postgresql", case="select-for-update", db=PG, waits=[("b_lock", ("A",))],
            errors={}, commits=["A", "B"], outcome=WAITED, broken=[],
            outputs={"b_lock": [f"notes={A_NOTES!r} person='Resident One'"]}),
        # the same form save without FOR UPDATE, in the same order
        way("naive-postgresql", scenario="concurrent-edit", case="whole-object-save", db=PG,
            permutation="a_load b_load a_save a_commit b_save b_commit", waits=[],
            errors={}, commits=["A", "B"], outcome=ANOMALY,
            broken=["B waits for A's row lock", "B reads A's note before it saves",
                    "both changes are in the row"]),
        # FOR UPDATE is dropped: B reads at once; A's commit waits for B's read lock, and
        # B's save then fails at once
        way("fixed-sqlite", case="select-for-update", db=SQLITE,
            waits=[("a_commit", (DB_LOCK,))], errors={"b_save": "SQLITE_BUSY"},
            commits=["A"], outcome=ABORTED,
            outputs={"b_lock": ["notes='' person='Resident One'"]},
            broken=["B waits for A's row lock", "B reads A's note before it saves",
                    "both changes are in the row"]),
    ])
    def test_concurrent_edit_with_explicit_locking(self, concurrent_edit_scenario, w):
        r = play("explicit-locking", w)
        assert r.final[0]["id"] == concurrent_edit_scenario.assignment.id
        assert broken_locking(r, concurrent_edit_scenario) == w.broken
        assert_trace(r, w)


# -- frame 5.2 ----------------------------------------------------------------------------

QUEUED = "swap #1 queued: a schedule generation is in progress"


def broken_generation(r: RunResult, swap: SwapScenario) -> list[str]:
    """Frame 5.2: the swap is queued, then executed after the generation; the generation
    completes; the final schedule keeps the swap."""
    people = [row["person"] for row in r.tables["Monday AM clinic"]]
    state = r.tables["swap and task"][0]
    return broken({
        "the swap is queued while the generation runs": r.outputs("s_execute") == [QUEUED],
        "the swap ends executed": state["swap"] == "executed",
        f"{swap.faculty_a.name} is off {swap.block_a.label}": swap.faculty_a.name not in people,
        "the generation completes": state["task"] == "completed",
    })


class TestSwapDuringGeneration:
    """Frame 5.2: Dr Adams' approved swap of #3 executes while week 1 is regenerated."""

    @pytest.mark.parametrize("w", [
        way("fixed-postgresql", case="generation-lock", db=PG, waits=[], errors={},
            commits=["S", "G", "G"], outcome=FINE, broken=[],
            outputs={"g_queued": ["swap #1 executed"]}),
        # no lock: the generation waits for the swap's row, then books Adams back
        way("naive-postgresql", case="naive", db=PG, waits=[("g_batch1", ("S",))], errors={},
            commits=["S", "G", "G"], outcome=ANOMALY,
            broken=["the swap is queued while the generation runs", "Dr Adams is off Monday AM"]),
        # S holds the write lock; the generation read first, so it cannot upgrade: it
        # fails, the old week stands, and the queued swap runs
        way("fixed-sqlite", case="generation-lock", db=SQLITE,
            waits=[("g_batch1", (DB_LOCK,))], errors={"g_batch1": "SQLITE_BUSY"},
            commits=["S", "G"], outcome=ABORTED, broken=["the generation completes"],
            outputs={"g_queued": ["swap #1 executed"]}),
        # a serialized database loses the swap just the same
        way("naive-sqlite", case="naive", db=SQLITE, waits=[("g_batch1", (DB_LOCK,))],
            errors={}, commits=["S", "G", "G"], outcome=ANOMALY,
            broken=["the swap is queued while the generation runs", "Dr Adams is off Monday AM"]),
    ])
    def test_swap_during_schedule_generation(self, swap_scenario, w):
        r = play("swap-during-generation", w)
        assert broken_generation(r, swap_scenario) == w.broken
        assert_trace(r, w)


# -- frame 5.3 ----------------------------------------------------------------------------

def broken_cancel(r: RunResult) -> list[str]:
    """Frame 5.3: cancel answers "cancelling"; the worker stops between batches, rolls
    back, ends cancelled with cancelled_at set; cancelling again is a no-op."""
    task = r.tables["task"][0]
    return broken({
        "the cancel is answered 'cancelling'": r.outputs("u_cancel") == ["cancelling"],
        "the worker stops between batches":
            any("cancel acknowledged" in out for out in r.outputs("w_batch2")),
        "the task ends cancelled, with cancelled_at set":
            task["status"] == "cancelled" and bool(task["cancelled_at_set"]),
        "no assignment carries the task's id": task["tagged_rows"] == 0,
        "cancelling again changes nothing":
            r.outputs("u_again")[0].endswith("nothing to cancel"),
    })


def broken_async_cancel(r: RunResult) -> list[str]:
    """Task.cancel(): CancelledError reaches the caller, the transaction rolls back, and
    the clean-up records the task as cancelled."""
    task = r.tables["task"][0]
    return broken({
        "CancelledError reaches the caller after batch 1": r.outputs("w_async") ==
            ["Task.cancel() -> cancelled after batch 1: its transaction rolled back"],
        "no assignment carries the task's id": task["tagged_rows"] == 0,
        "the clean-up ends the task cancelled, with cancelled_at set":
            task["status"] == "cancelled" and bool(task["cancelled_at_set"]),
    })


class TestTaskCancellation:
    """Frame 5.3: a coordinator cancels a running generation (task #1)."""

    @pytest.mark.parametrize("w", [
        way("fixed-postgresql", case="cooperative", db=PG, waits=[], errors={},
            commits=["U", "W", "U"], outcome=FINE, broken=[]),
        # "cancelled" is only a status: the worker never looks
        way("naive-postgresql", case="naive", db=PG, waits=[], errors={},
            commits=["U", "W", "U"], outcome=ANOMALY,
            broken=["the cancel is answered 'cancelling'", "the worker stops between batches",
                    "the task ends cancelled, with cancelled_at set",
                    "no assignment carries the task's id"]),
        # the request is a write, and the worker holds the write lock until it commits
        way("fixed-sqlite", case="cooperative", db=SQLITE, waits=[("u_cancel", (DB_LOCK,))],
            errors={"u_cancel": "SQLITE_BUSY"}, commits=["W", "U"], outcome=ABORTED,
            broken=["the cancel is answered 'cancelling'", "the worker stops between batches",
                    "the task ends cancelled, with cancelled_at set",
                    "no assignment carries the task's id"]),
    ])
    def test_task_cancellation_mid_execution(self, w):
        r = play("task-cancellation", w)
        assert broken_cancel(r) == w.broken
        assert_trace(r, w)

    @pytest.mark.parametrize("w", [
        way("fixed-postgresql", case="asyncio", db=PG, waits=[], errors={}, commits=[],
            outcome=FINE, broken=[]),
        # no CancelledError handler: the worker stops, and the task says "running" for good
        way("naive-postgresql", case="asyncio-no-cleanup", db=PG, waits=[], errors={},
            commits=[], outcome=ANOMALY,
            broken=["the clean-up ends the task cancelled, with cancelled_at set"]),
        way("fixed-sqlite", case="asyncio", db=SQLITE, waits=[], errors={}, commits=[],
            outcome=FINE, broken=[]),
    ])
    def test_task_cancellation_with_asyncio(self, w):
        r = play("task-cancellation", w)
        assert broken_async_cancel(r) == w.broken
        assert_trace(r, w)


# -- frame 5.4 ----------------------------------------------------------------------------

def broken_swap_race(r: RunResult, swap: SwapScenario) -> list[str]:
    """Frame 5.4: exactly one swap executes, the other fails with "already swapped", and
    the shift is reassigned once."""
    statuses = {row["id"]: (row["status"], row["reason"]) for row in r.tables["swaps"]}
    people = {row["id"]: row["person"]
              for row in r.tables["Baker's Monday PM (#5) and Monday AM"]}
    taken = f"assignment #{swap.assignment_b.id} already swapped"
    return broken({
        "exactly one swap executes": [s for s, _ in statuses.values()].count("executed") == 1,
        f"the other is rejected: {taken!r}": ("rejected", taken) in statuses.values(),
        "no raw database error reaches the user": not r.errors(),
        f"{swap.faculty_b.name}'s shift goes to {swap.faculty_a.name}, once":
            (people[swap.assignment_a.id], people[swap.assignment_b.id])
            == (swap.faculty_b.name, swap.faculty_a.name),
    })


def broken_booking(r: RunResult) -> list[str]:
    """The original's intent: the first succeeds, the second waits or fails cleanly,
    and nothing is booked twice."""
    refusals = [e.error for e in r.events if e.kind == "error"]
    count = next(iter(r.final[0].values()))  # bookings, or open requests: one count
    return broken({
        "the first commits": r.committed("A"),
        "the second is refused by a scheduling rule, not a raw database error":
            refusals == [ErrorKind.RULE],
        "one, never two": count == 1,
    })


class TestSwapRaceCondition:
    """Frame 5.4: two requests want the same shift."""

    @pytest.mark.parametrize("w", [
        way("fixed-postgresql", case="fixed", db=PG, waits=[("c_execute", ("A",))],
            errors={}, commits=["A", "C"], outcome=WAITED, broken=[],
            outputs={"c_execute": ["swap #2 rejected: assignment #5 already swapped"]}),
        # no lock, no re-check: the unique key stops C with a raw 23505
        way("naive-postgresql", case="naive", db=PG, waits=[("c_execute", ("A",))],
            errors={"c_execute": "23505"}, commits=["A"], outcome=ANOMALY,
            broken=["the other is rejected: 'assignment #5 already swapped'",
                    "no raw database error reaches the user"]),
        way("fixed-sqlite", case="fixed", db=SQLITE, waits=[("c_execute", (DB_LOCK,))],
            errors={}, commits=["A", "C"], outcome=WAITED, broken=[]),
        # without BEGIN IMMEDIATE, C's read cannot become a write: SQLITE_BUSY at once
        way("naive-sqlite", case="naive", db=SQLITE, waits=[],
            errors={"c_execute": "SQLITE_BUSY"}, commits=["A"], outcome=ANOMALY,
            broken=["the other is rejected: 'assignment #5 already swapped'",
                    "no raw database error reaches the user"]),
    ])
    def test_swap_race_condition_two_faculty_want_same_shift(self, swap_scenario, w):
        r = play("swap-race", w)
        assert broken_swap_race(r, swap_scenario) == w.broken
        assert_trace(r, w)

    @pytest.mark.parametrize("w", [
        # the original's own case: a second swap request for the same shift
        way("fixed-postgresql", case="partial-unique-index", db=PG,
            waits=[("b_request", ("A",))], errors={"b_request": "swap-pending"},
            commits=["A"], outcome=ABORTED, broken=[]),
        way("domain-error-postgresql", scenario="double-booking", case="domain-error", db=PG,
            waits=[("b_book", ("A",))], errors={"b_book": "double-booked"}, commits=["A"],
            outcome=ABORTED, broken=[]),
        # check-then-insert: only the unique key stops B, and the user sees its 23505
        way("naive-postgresql", scenario="double-booking", case="raw-error", db=PG,
            waits=[("b_book", ("A",))], errors={"b_book": "23505"}, commits=["A"],
            outcome=ANOMALY,
            broken=["the second is refused by a scheduling rule, not a raw database error"]),
        way("fixed-sqlite", case="partial-unique-index", db=SQLITE,
            waits=[("b_request", (DB_LOCK,))], errors={"b_request": "swap-pending"},
            commits=["A"], outcome=ABORTED, broken=[]),
        # B's check opened a read; SQLite refuses its upgrade before the constraint is reached
        way("domain-error-sqlite", scenario="double-booking", case="domain-error", db=SQLITE,
            waits=[], errors={"b_book": "SQLITE_BUSY"}, commits=["A"], outcome=ANOMALY,
            broken=["the second is refused by a scheduling rule, not a raw database error"]),
    ])
    def test_swap_auto_matcher_prevents_double_booking(self, w):
        r = play("pending-swap", w)
        assert broken_booking(r) == w.broken
        assert_trace(r, w)


# -- frame 5.5 ----------------------------------------------------------------------------

def broken_reads(r: RunResult, swap: SwapScenario) -> list[str]:
    """A reader sees the two shifts before the swap or after it, never one of each."""
    before = f"{swap.faculty_a.name}, {swap.faculty_b.name}"  # #3, #5
    after = f"{swap.faculty_b.name}, {swap.faculty_a.name}"
    return broken({
        "every report shows both shifts old or both new":
            all(shown in (before, after) for _, shown in read_during_write.reports(r)),
    })


def broken_lock_order(r: RunResult, swap: SwapScenario) -> list[str]:
    """Locks taken in one order: one session waits, nobody deadlocks or retries."""
    notes = {row["id"]: row["notes"] for row in r.final}
    once = all(n.count("[A]") == n.count("[B]") == 1 for n in notes.values())
    return broken({
        "no deadlock (40P01)": "40P01" not in r.errors().values(),
        "one session waits for the other, once": len(r.waits()) == 1,
        "each confirmation lands on its first attempt":
            r.outputs("a_retry") == r.outputs("b_retry")
            == ["the first attempt landed: nothing to retry"],
        f"both confirmations land once on #{swap.assignment_a.id} and #{swap.assignment_b.id}":
            set(notes) == {swap.assignment_a.id, swap.assignment_b.id} and once,
    })


OLD, NEW = read_during_write.OLD, read_during_write.NEW


class TestConcurrentEdgeCases:
    """Frame 5.5: a report during a swap, and two swap confirmations locking two shifts."""

    @pytest.mark.parametrize("w", [
        way("fixed-postgresql", case="report", db=PG, waits=[], errors={},
            commits=["W", "R"], outcome=FINE, broken=[],
            outputs={"r_read1": [OLD], "r_read2": [NEW], "r_read3": [NEW]}),
        way("repeatable-read-postgresql", case="report", db=PG, isolation="repeatable read",
            waits=[], errors={}, commits=["W", "R"], outcome=FINE, broken=[],
            outputs={"r_read1": [OLD], "r_read2": [OLD], "r_read3": [NEW]}),
        # one report in two statements: the swap commits between them
        way("naive-postgresql", case="two-statements", db=PG, waits=[], errors={},
            commits=["W", "R"], outcome=ANOMALY,
            outputs={"r_shift3": ["Dr Adams"], "r_shift5": ["Dr Adams"]},
            broken=["every report shows both shifts old or both new"]),
        # the same two statements under REPEATABLE READ: one snapshot for both
        way("naive-repeatable-read-postgresql", case="two-statements", db=PG,
            isolation="repeatable read", waits=[], errors={}, commits=["W", "R"],
            outcome=FINE, broken=[],
            outputs={"r_shift3": ["Dr Adams"], "r_shift5": ["Dr Baker"]}),
        # a rollback journal: the writer's COMMIT waits for the reader
        way("fixed-sqlite", case="report", db=SQLITE, waits=[("w_commit", (DB_LOCK,))],
            errors={}, commits=["R", "W"], outcome=WAITED, broken=[],
            outputs={"r_read1": [OLD], "r_read2": [OLD], "r_read3": [NEW]}),
        way("naive-sqlite", case="two-statements", db=SQLITE,
            waits=[("w_commit", (DB_LOCK,))], errors={}, commits=["R", "W"],
            outcome=WAITED, broken=[],
            outputs={"r_shift3": ["Dr Adams"], "r_shift5": ["Dr Baker"]}),
        way("fixed-sqlite-wal", case="report", db="sqlite-wal", waits=[], errors={},
            commits=["W", "R"], outcome=FINE, broken=[],
            outputs={"r_read1": [OLD], "r_read2": [OLD], "r_read3": [NEW]}),
    ])
    def test_concurrent_read_during_write(self, swap_scenario, w):
        r = play("read-during-write", w)
        assert broken_reads(r, swap_scenario) == w.broken
        assert_trace(r, w)

    @pytest.mark.parametrize("w", [
        way("fixed-postgresql", case="id-order", db=PG, waits=[("b_lock1", ("A",))],
            errors={}, commits=["A", "B", "A", "B"], outcome=WAITED, broken=[]),
        # opposite order: a cycle; PostgreSQL aborts the first waiter, which retries
        way("naive-postgresql", case="opposite-order", db=PG,
            waits=[("a_lock2", ("B",)), ("b_lock2", ("A",))], errors={"a_lock2": "40P01"},
            commits=["B", "A", "B"], outcome=ABORTED,
            broken=["no deadlock (40P01)", "one session waits for the other, once",
                    "each confirmation lands on its first attempt"]),
        way("fixed-sqlite", case="id-order", db=SQLITE, waits=[("b_lock1", (DB_LOCK,))],
            errors={}, commits=["A", "B", "A", "B"], outcome=WAITED, broken=[]),
        # BEGIN IMMEDIATE locks the whole file: no cycle can form, but B, told to go on
        # while A holds it, gives up after the busy timeout and retries
        way("naive-sqlite", case="opposite-order", db=SQLITE,
            waits=[("b_lock1", (DB_LOCK,))], errors={"b_lock1": "SQLITE_BUSY"},
            commits=["A", "A", "B"], outcome=ABORTED,
            broken=["each confirmation lands on its first attempt"]),
    ])
    def test_deadlock_prevention(self, swap_scenario, w):
        r = play("swap-deadlock", w)
        assert broken_lock_order(r, swap_scenario) == w.broken
        assert_trace(r, w)
