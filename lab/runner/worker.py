"""A session's worker thread: its own connection, isolation level and SQLAlchemy Session.

Each step runs here, so a step that waits for a lock blocks only this thread while the
conductor, on the main thread, watches and moves on. What a step *does* is the session
driver's business (ORM or spec-file SQL); the worker only carries it out.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..errors import RunFailed
from .driver import Before, SessionDriver
from .schedule import Launch
from .scenario import Step
from .trace import StepResult

CONNECT_TIMEOUT_S = 15.0


@dataclass(eq=False)
class Job:
    """One step in flight. `done` is set by the worker when the step has finished."""

    step: Step
    launch: Launch
    before: Before | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: StepResult | None = None
    crash: BaseException | None = None
    finished: float = 0.0


class SessionWorker:
    def __init__(self, name: str, open_connection: Callable[[], Connection],
                 changed: threading.Condition, driver: SessionDriver):
        self.name = name
        self.driver = driver
        self._open = open_connection
        self._changed = changed
        self._inbox: queue.SimpleQueue[Job | Callable[[Session], Any] | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.connection: Connection | None = None
        self.session: Session | None = None
        self.thread = threading.Thread(target=self._main, name=f"lab-session-{name}", daemon=True)
        self.thread.start()
        if not self._ready.wait(CONNECT_TIMEOUT_S):
            raise RunFailed(f"session {name} could not connect within {CONNECT_TIMEOUT_S:g} s")
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            self.connection = self._open()
            self.session = Session(bind=self.connection)
        except BaseException as exc:  # handed to the conductor's thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while (job := self._inbox.get()) is not None:
                if isinstance(job, Job):
                    self._run(job)
                else:
                    job(self.session)
        finally:
            with contextlib.suppress(Exception):
                self.session.close()
            with contextlib.suppress(Exception):
                self.connection.close()

    def _run(self, job: Job) -> None:
        try:
            job.result = self.driver.execute(job.step, self.session, job.before)
        except BaseException as exc:
            job.crash = exc
        job.finished = time.monotonic()
        job.done.set()
        with self._changed:
            self._changed.notify_all()

    def submit(self, job: Job) -> None:
        self._inbox.put(job)

    def call(self, fn: Callable[[Session], Any], timeout: float) -> Any:
        """Run `fn(session)` on this session's thread and return its result."""
        box: list[Any] = []
        done = threading.Event()

        def wrapped(session: Session) -> None:
            try:
                box.append(("ok", fn(session)))
            except BaseException as exc:
                box.append(("err", exc))
            done.set()

        self._inbox.put(wrapped)
        if not done.wait(timeout):
            raise RunFailed(f"session {self.name} did not answer within {timeout:g} s")
        kind, value = box[0]
        if kind == "err":
            raise value
        return value

    def stop(self) -> None:
        self._inbox.put(None)
