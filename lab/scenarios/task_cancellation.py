"""task-cancellation: stopping a long schedule generation (frame 5.3).

The original had no cancellation: flipping the status to "cancelled" did not stop the
worker, which finished and tagged every row. The fix is cooperative: cancel asks for
"cancelling"; the worker notices between batches, rolls back its partial work and ends
"cancelled" with cancelled_at set. Also shown: cancelling a finished task (a no-op), the
asyncio variant (Task.cancel()), with and without the clean-up that records the cancel,
and a worker stuck on a row lock cancelled inside the database (PostgreSQL:
pg_cancel_backend, SQLSTATE 57014).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from ..models import Assignment
from ..exercises.kinds import Choice, Prediction, broke, failed_with, play
from ..runner import (
    COMMIT, MatrixRow, Outcome, RunResult, Scenario, Variant, Verdict, context, step,
)
from ..seed import week_one_plan
from ..services import tasks
from ..services.generation import generate_async
from .generation_steps import BATCH, generator, start_generation

TASK = 1
HOLDER_NOTE = "being edited by H"


def _worker_steps(cooperative: bool):
    return [
        step("w_start", start_generation(False, cooperative), "W: starts generating week 1 as task #1"),
        step("w_batch1", generator("write_batch"), "W: writes batch 1 of 2"),
        step("w_batch2", generator("write_batch"), "W: " + (
            "looks for a cancel request first: if there is one, rolls back and ends"
            " cancelled; else writes batch 2"
            if cooperative else "writes batch 2; never looks at the task's status")),
        step("w_finish", generator("finish"), "W: removes stale rows, marks the task completed"),
        step("w_commit", COMMIT, "W: commits"),
    ]


def _user_steps(cancel, note: str, while_writing: bool = True):
    return [
        step("u_cancel", cancel, note,
             sqlite="U: asks to cancel; W holds SQLite's write lock, so U must wait"
             if while_writing else ""),
        step("u_commit", COMMIT, "U: commits"),
        step("u_again", lambda s: tasks.request_cancel(s, TASK), "U: cancels again: harmless"),
        step("u_commit2", COMMIT, "U: commits"),
    ]


def _cancel_async(record_cancel: bool):
    """Run the asyncio worker, cancel it with Task.cancel() right after batch 1."""

    def cancel_async(s: Session) -> str:
        task = tasks.create_task(s, "generate")
        task.status, task_id = "running", task.id
        s.commit()  # and keep no read open: the async worker needs SQLite's write lock
        url = s.get_bind().engine.url
        if url.get_backend_name() == "sqlite":
            url = url.set(drivername="sqlite+aiosqlite")

        async def main() -> str:
            engine = create_async_engine(url, poolclass=NullPool)
            first_batch = asyncio.Event()

            async def after_batch(n: int) -> None:
                if n == 1:
                    first_batch.set()
                await asyncio.sleep(0)  # ok-sleep: a zero-length yield, the await where Task.cancel() lands

            worker = asyncio.create_task(generate_async(engine, week_one_plan(), task_id,
                                                        BATCH, after_batch,
                                                        record_cancel=record_cancel))
            await first_batch.wait()
            worker.cancel()
            try:
                outcome = await worker
            except asyncio.CancelledError:
                outcome = "cancelled after batch 1: its transaction rolled back"
            await engine.dispose()
            return f"Task.cancel() -> {outcome}"

        return asyncio.run(main())

    return cancel_async


FINAL = {
    "task": """SELECT t.id, t.status, t.cancelled_at IS NOT NULL AS cancelled_at_set,
               (SELECT COUNT(*) FROM assignment a WHERE a.task_id = t.id) AS tagged_rows
               FROM task t ORDER BY t.id""",
    "assignment #1": "SELECT id, notes FROM assignment WHERE id = 1",
}


def cancelled_cleanly(result: RunResult) -> Verdict:
    """Frame 5.3: a cancelled task ends cancelled, with cancelled_at, and leaves no rows."""
    if not result.tables["task"]:  # the worker's first transaction never committed
        failed = ", ".join(f"{st} failed with {code}" for st, code in result.errors().items())
        return Verdict(Outcome.ABORTED if failed else Outcome.FINE,
                       f"{failed or 'nothing failed'}; no task was recorded, and none runs")
    task = result.tables["task"][0]
    told = " / ".join(result.outputs("u_cancel")) or "nothing"
    if task["status"] == "cancelled" and task["tagged_rows"]:
        return Verdict(Outcome.ANOMALY, f"task #{task['id']} says cancelled, yet"
                       f" {task['tagged_rows']} assignments carry its id")
    if task["status"] == "cancelled" and not task["cancelled_at_set"]:
        return Verdict(Outcome.ANOMALY, f"task #{task['id']} is cancelled without cancelled_at")
    if told.startswith("cancel") and task["status"] == "completed":
        return Verdict(Outcome.ANOMALY, f"the user was told {told!r}, yet task #{task['id']} ran"
                       f" to completion and {task['tagged_rows']} assignments carry its id")
    if task["status"] in ("running", "cancelling"):
        return Verdict(Outcome.ANOMALY, f"task #{task['id']} is left {task['status']!r} with no"
                       " worker behind it: its clean-up never ran")
    errors = result.errors()
    if errors:
        failed = ", ".join(f"{st} failed with {code}" for st, code in errors.items())
        return Verdict(Outcome.ABORTED, f"{failed}; task #{task['id']} ended"
                       f" {task['status']} with {task['tagged_rows']} rows of its own;"
                       f" assignment #1 notes={result.tables['assignment #1'][0]['notes']!r}")
    if task["status"] == "cancelled":
        return Verdict(Outcome.FINE, f"task #{task['id']} cancelled cleanly: cancelled_at set,"
                       " no assignment carries its id")
    return Verdict(Outcome.FINE, f"task #{task['id']} {task['status']}; the cancel request"
                   f" answered {told!r} and changed nothing")


_CANCEL = "w_start w_batch1 u_cancel u_commit w_batch2 w_finish w_commit u_again u_commit2"

def _cancel_w(s: Session) -> str:
    worker = context(s).peers["W"]
    return tasks.cancel_statement(s, worker.connection, worker.backend_pid)


SCENARIO = Scenario(
    name="task-cancellation",
    title="Cancelling a running generation",
    summary="Cancel must stop a generation between batches and leave none of its rows.",
    frame="5.3",
    setup=None,
    final_state=FINAL,
    variants=(
        Variant("naive", "The original: 'cancelled' is only a status; the worker finishes.",
                {"W": _worker_steps(False),
                 "U": _user_steps(lambda s: tasks.request_cancel_naive(s, TASK),
                                  "U: sets the task to cancelled")},
                _CANCEL, cancelled_cleanly),
        Variant("cooperative", "Cancel asks; the worker stops between batches and rolls back.",
                {"W": _worker_steps(True),
                 "U": _user_steps(lambda s: tasks.request_cancel(s, TASK),
                                  "U: asks the task to cancel: 'cancelling'")},
                _CANCEL, cancelled_cleanly),
        Variant("after-finish", "Cancelling a task that already finished changes nothing.",
                {"W": _worker_steps(True),
                 "U": _user_steps(lambda s: tasks.request_cancel(s, TASK),
                                  "U: asks to cancel a finished task", while_writing=False)},
                "w_start w_batch1 w_batch2 w_finish w_commit u_cancel u_commit u_again"
                " u_commit2", cancelled_cleanly),
        Variant("asyncio", "An asyncio worker cancelled with Task.cancel() rolls back the same"
                " way.", {"W": [step("w_async", _cancel_async(True), "W: runs the asyncio"
                                     " worker; cancels it with Task.cancel() after batch 1")]},
                "w_async", cancelled_cleanly),
        Variant("asyncio-no-cleanup", "The asyncio worker without its CancelledError"
                " clean-up: it stops, but the task stays 'running'.",
                {"W": [step("w_async", _cancel_async(False), "W: runs the asyncio worker"
                            " without its clean-up; cancels it after batch 1")]},
                "w_async", cancelled_cleanly),
        Variant("server-side", "A worker stuck on a row lock is cancelled inside the"
                " database; the lock holder is untouched.",
                {"H": [step("h_edit", lambda s: s.execute(
                           update(Assignment).where(Assignment.id == 1)
                           .values(notes=HOLDER_NOTE)).rowcount,
                           "H: edits assignment #1 and keeps its transaction open"),
                       step("h_commit", COMMIT, "H: commits: its edit survives")],
                 "W": _worker_steps(True)[:2],
                 "U": [step("u_kill", _cancel_w,
                            "U: cancels W's statement in the database (pg_cancel_backend)",
                            sqlite="U: calls sqlite3 interrupt() on W's connection")]},
                "w_start h_edit w_batch1 u_kill h_commit", cancelled_cleanly),
    ),
    matrix=(MatrixRow("cancel ignored: the task finishes (app)", "naive", app=True),
            MatrixRow("fix: cooperative cancel", "cooperative", fix=True)),
    exercise=Prediction(
        "The cooperative cancel, under REPEATABLE READ on PostgreSQL: U asks W to stop after"
        " W's first batch. How does task #1 end?",
        (Choice("a", "cancelled, with no rows of its own, as under READ COMMITTED",
                lambda r: r.tables["task"][0]["status"] == "cancelled",
                "W looks for the request in its own snapshot, taken at its first batch, before"
                " U asked. It never sees 'cancelling'."),
         Choice("c", "failed: W never sees the request, writes on, and its last step fails"
                " with 40001; none of its rows survive",
                lambda r: r.tables["task"][0]["status"] == "failed"
                and failed_with("40001", "w_")(r),
                "W's snapshot predates U's request, so the cancel check reads 'running'. When"
                " W finally updates the task row, which U changed after that snapshot,"
                " PostgreSQL refuses with 40001 and W rolls back: the old week stands, but the"
                " user asked for a cancel and got a failure. A cancel check must read fresh"
                " data: READ COMMITTED, or its own short transaction."),
         Choice("b", "completed: W finishes and ignores the request",
                lambda r: r.tables["task"][0]["status"] == "completed",
                "W does try to finish, but its finish step writes the task row U changed, and"
                " under REPEATABLE READ that write fails.")),
        play("task-cancellation", "cooperative", isolation="repeatable read")),
)
