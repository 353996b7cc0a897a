"""The service layer on its own (no runner): each fix does what it promises."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lab.db import open_run_database, resolve
from lab.errors import ConflictError, DoubleBookingError, SwapPendingError
from lab.models import Assignment, SwapRequest, Task
from lab.seed import FACULTY, block_id, week_one_plan
from lab.services import assignments, generation, swaps, tasks

ADAMS, BAKER, CHEN = FACULTY
MON_AM_ADAMS = 3  # assignment id of Dr Adams supervising clinic on the first Monday morning


def _fresh(backend: str):
    db = open_run_database(resolve(backend))  # arrives with the seeded schedule
    try:
        yield db.engine
    finally:
        db.close()


@pytest.fixture
def engine(backend):
    yield from _fresh(backend)


@pytest.fixture
def pg_engine():
    """PostgreSQL only: SQLite lets nobody write (not even a cancel request) while a
    generation's write transaction is open; its scenario test shows what happens there."""
    yield from _fresh("embedded")


def test_stale_orm_save_is_a_409_with_the_current_version(engine):
    with Session(engine) as a, Session(engine, expire_on_commit=False) as b:
        mine, theirs = assignments.load_for_edit(a, 1), assignments.load_for_edit(b, 1)
        b.commit()  # B's read transaction ends; it keeps its loaded copy (version 1)
        assert assignments.save_edit(a, mine, notes="late start") == 2
        a.commit()
        with pytest.raises(ConflictError) as info:
            assignments.save_edit(b, theirs, person_id=3)
        assert (info.value.status, info.value.loaded_version, info.value.current_version) == \
            (409, 1, 2)
        again = assignments.load_for_edit(b, 1)
        assert (again.notes, again.version) == ("late start", 2)


def test_compare_and_set_refuses_a_stale_version(engine):
    with Session(engine) as s:
        assert assignments.save_edit_cas(s, 1, 1, notes="first") == 2
        s.commit()
        with pytest.raises(ConflictError, match="now version 2"):
            assignments.save_edit_cas(s, 1, 1, notes="stale")
        assert s.get(Assignment, 1).notes == "first"


def test_second_open_swap_for_the_same_assignment_is_refused(engine):
    with Session(engine) as s:
        swaps.request_swap(s, MON_AM_ADAMS, None, CHEN)
        with pytest.raises(SwapPendingError, match="already has a pending swap"):
            swaps.request_swap(s, MON_AM_ADAMS, None, BAKER)
        assert s.scalar(select(func.count()).select_from(SwapRequest)) == 1


def test_swap_that_lost_the_race_is_rejected_as_already_swapped(engine):
    with Session(engine) as s:
        first = swaps.request_swap(s, MON_AM_ADAMS, None, CHEN)
        s.commit()
        assert swaps.execute_swap(s, first.id) == f"swap #{first.id} executed"
        s.commit()
        stale = SwapRequest(source_faculty_id=ADAMS, source_assignment_id=MON_AM_ADAMS,
                            target_faculty_id=BAKER, swap_type="absorb", status="approved",
                            requested_at=func.current_timestamp())
        s.add(stale)
        s.flush()
        assert "already swapped" in swaps.execute_swap(s, stale.id)
        s.commit()
        assert s.get(SwapRequest, stale.id).status == "rejected"
        assert s.get(Assignment, MON_AM_ADAMS).person_id == CHEN


def test_versioned_swap_refuses_a_shift_written_since_it_was_read(engine):
    with Session(engine) as s:
        read = assignments.current_version(s, MON_AM_ADAMS)
        request = swaps.request_swap(s, MON_AM_ADAMS, None, CHEN)
        s.commit()
        assignments.save_edit_cas(s, MON_AM_ADAMS, read, notes="moved to room 2")
        s.commit()  # someone saved the shift after the swap read it
        with pytest.raises(ConflictError, match=f"loaded version {read}"):
            swaps.execute_swap_versioned(s, request.id, {MON_AM_ADAMS: read})
        assert s.get(Assignment, MON_AM_ADAMS).person_id == ADAMS
        assert s.get(SwapRequest, request.id).status == "approved"
        assert swaps.execute_swap_versioned(s, request.id, {MON_AM_ADAMS: read + 1}) == \
            f"swap #{request.id} executed"
        s.commit()
        assert s.get(Assignment, MON_AM_ADAMS).person_id == CHEN


def test_holding_the_schedule_queues_swaps_until_it_ends(pg_engine):
    with Session(pg_engine) as holder, Session(pg_engine) as swapper:
        generation.hold_schedule(holder)
        assert not generation.swap_may_run(swapper)
        swapper.rollback()
        holder.commit()
        assert generation.swap_may_run(swapper)


def test_double_booking_becomes_a_domain_error(engine):
    with Session(engine) as s:
        # Resident One already works clinic on Monday morning (assignment 1)
        with pytest.raises(DoubleBookingError, match="already booked"):
            assignments.book(s, block_id(0, "AM"), 1, 1, "backup")
        s.rollback()
        with pytest.raises(IntegrityError):  # the original: a raw 23505 / UNIQUE failure
            assignments.book_naive(s, block_id(0, "AM"), 1, 1, "backup")


def test_generation_keeps_ids_and_manual_rows_and_completes(engine):
    with Session(engine) as s:
        s.get(Assignment, MON_AM_ADAMS).source = "manual"
        s.commit()
        before = dict(s.execute(select(Assignment.id, Assignment.person_id)).all())
        gen = generation.ScheduleGenerator(s, week_one_plan(), batch_size=10)
        assert "complete" in gen.run()
        after = dict(s.execute(select(Assignment.id, Assignment.person_id)).all())
        assert after == before
        assert s.get(Task, gen.task_id).status == "completed"
        assert s.get(Assignment, MON_AM_ADAMS).task_id is None  # manual: left alone


def test_cancelled_generation_leaves_no_trace_of_its_batches(pg_engine):
    with Session(pg_engine) as gen_s, Session(pg_engine) as user:
        gen = generation.ScheduleGenerator(gen_s, week_one_plan(), batch_size=10)
        gen.start()
        gen.write_batch()
        assert tasks.request_cancel(user, gen.task_id) == "cancelling"
        user.commit()
        assert "cancel acknowledged" in gen.write_batch()
        task = user.get(Task, gen.task_id)
        user.refresh(task)
        assert (task.status, task.cancelled_at is not None) == ("cancelled", True)
        assert user.scalar(select(func.count()).where(Assignment.task_id == gen.task_id)) == 0
        assert tasks.request_cancel(user, gen.task_id) == \
            f"task #{gen.task_id} is cancelled: nothing to cancel"


def test_cancelling_a_finished_task_changes_nothing(engine):
    with Session(engine) as s:
        gen = generation.ScheduleGenerator(s, week_one_plan(), batch_size=25)
        gen.run()
        assert tasks.request_cancel(s, gen.task_id) == \
            f"task #{gen.task_id} is completed: nothing to cancel"
        assert s.get(Task, gen.task_id).status == "completed"


def test_swap_is_queued_while_generation_holds_the_lock_then_runs(engine):
    with Session(engine) as gen_s, Session(engine) as user:
        req = swaps.request_swap(user, MON_AM_ADAMS, None, CHEN)
        user.commit()
        gen = generation.ScheduleGenerator(gen_s, week_one_plan(), batch_size=25)
        gen.start()
        assert "queued" in swaps.execute_swap(user, req.id)
        user.commit()
        gen.write_batch()
        gen.finish()
        gen_s.commit()
        assert swaps.run_queued_swaps(user) == [f"swap #{req.id} executed"]
        user.commit()
        assert user.get(Assignment, MON_AM_ADAMS).person_id == CHEN
        assert block_id(0, "AM") == user.get(Assignment, MON_AM_ADAMS).block_id
