"""The conductor: plays a permutation one step at a time and *detects* who waits for whom.

One engine, two ways in: ``Run.step(name)`` plays a single step (a notebook cell), and
``Run.play(permutation)`` is just a loop over it. After launching a step the conductor
waits until the step finishes or its session is seen blocked (PostgreSQL:
``pg_blocking_pids``; SQLite: the busy handler). Then it *settles*: every waiting step
is left either finished or still blocked by something the run has not yet released, and
finished ones are recorded in launch order, as isolationtester prints ``<... completed>``.
Nothing sleeps to decide an order; short polls only observe.
"""

from __future__ import annotations

import atexit
import contextlib
import time
import weakref
from collections.abc import Iterable

from ..db import RunDatabase, Target, resolve
from ..db.postgres import DEADLOCK_TIMEOUT_MS
from ..errors import PermutationError, RunFailed
from .raw_sql import end_raw_transaction
from .result import Events, RunResult
from .scenario import (Scenario, Step, Variant, format_entry, normalize_isolation,
                       split_permutation)
from .trace import Event, EventKind, Outcome, ResultSet
from .stage import Stage
from .worker import Job, SessionWorker, execute

DEFAULT_TIMEOUT_S = 5.0
QUEUED_NOTE = ("two sessions queued for the same lock: when it is released PostgreSQL"
               " decides which goes first, so this order may not replay identically")
POLL_S = 0.0002  # how often a wait is looked at; never decides an order
FIRST_POLL_S = 0.0003

_open_runs: weakref.WeakSet[Run] = weakref.WeakSet()


@atexit.register
def _close_open_runs() -> None:
    for run in list(_open_runs):
        with contextlib.suppress(Exception):
            run.close()


class Run:
    """One scenario case on one fresh database, with one worker thread per session."""

    def __init__(self, scenario: Scenario, case: str | None = None, *,
                 isolation: str | None = None, db: Target | str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, track_locks: bool = True,
                 stage: Stage | None = None):
        """`stage`: play on an existing stage (the explorer's); it is reset, not closed."""
        self.scenario = scenario
        self.track_locks = track_locks
        self.variant: Variant = scenario.variant(case)
        self.isolation = normalize_isolation(isolation or self.variant.isolations[0])
        self.target = stage.target if stage else db if isinstance(db, Target) else resolve(db)
        self.timeout = timeout
        self.events: list[Event] = []
        self._steps = self.variant.steps()
        self._played: list[str] = []
        self._next = {s: 0 for s in self.variant.sessions}
        self._waiting: dict[str, Job] = {}  # session -> its blocked step, in launch order
        self._commits = 0
        self._queued_on_one_row = False  # a waiter blocked by another waiter: see _notes
        # a spec that sets deadlock_timeout itself chooses its victim: leave it alone
        self._spec_sets_deadlock_timeout = scenario.raw_sql and any(
            "deadlock_timeout" in getattr(a, "text", "") for a in
            [st.action for st in self._steps.values()] + list(self.variant.session_setup.values()))
        self._t0 = time.monotonic()
        self._closed = False
        self._owns_stage = stage is None
        self.stage: Stage | None = stage
        _open_runs.add(self)
        try:
            if stage is None:
                self.stage = Stage(self.target, list(self.variant.sessions), self.isolation,
                                   timeout=timeout, raw_sql=scenario.raw_sql)
            elif stage.used:
                stage.reset()
            self.stage.used = True
            self._deadlock_ms = self.stage.deadlock_ms  # what each session has set now
            self.db: RunDatabase = self.stage.db
            self.monitor = self.stage.monitor
            self.workers: dict[str, SessionWorker] = self.stage.workers
            self._changed = self.stage.changed
            self._setup()
        except BaseException:
            self.close()
            raise

    # -- set-up -----------------------------------------------------------------------
    def _setup(self) -> None:
        """The run's database arrives seeded; the scenario's own setup goes on top.

        Spec files: what their setup SQL returns is kept, as isolationtester prints it.
        """
        self._setup_results: list[ResultSet] = []
        if self.scenario.setup is not None:
            shown = self.stage.write(self.scenario.setup)
            self._setup_results += shown if self.scenario.raw_sql else []
        for name, action in self.variant.session_setup.items():
            self._setup_results += self._session_call(name, action).results[-1:]

    def _session_call(self, session: str, action) -> Outcome:
        """A session's own setup or teardown (spec files): run, not traced, must succeed."""
        out = self.workers[session].call(lambda s: execute(Step("(setup)", action), s),
                                         self.timeout)
        if out.code is not None:
            raise RunFailed(f"session {session}'s setup/teardown failed: {out.code} {out.error}")
        return out

    # -- the engine -------------------------------------------------------------------
    def step(self, entry: str) -> Events:
        """Play one step; return the events it produced (its own and any it released).

        `entry` is a step name, or with isolationtester's blocker marker: `name(*)`
        (report it waiting until a later step), `name(other)` (report its completion
        only once `other` has completed).
        """
        self._check_open()
        name, markers = (split_permutation(entry) or [("", ())])[0]
        st = self._steps.get(name)
        if st is None:
            raise PermutationError(f"unknown step {name!r}; steps are: {' '.join(self._steps)}")
        if markers:
            self.variant.parse_permutation(entry)  # checks the marker's step names
        expected = self.variant.sessions[st.session]
        index = self._next[st.session]
        if not self.variant.free_order and (
                index >= len(expected) or expected[index].name != name):
            want = expected[index].name if index < len(expected) else "nothing (it is done)"
            raise PermutationError(f"step {name!r} is out of order: session {st.session} plays"
                                   f" {want} next")
        start = len(self.events)
        try:
            if st.session in self._waiting:
                self._drain(st)
            self._next[st.session] += 1
            self._played.append(format_entry(name, markers))
            self._launch(st, markers)
        except BaseException:
            self.close()
            raise
        return Events(self.events[start:])

    def playable(self) -> list[str]:
        """The next step of each session that can move now: not done, not waiting.

        A step of a blocked session cannot start before its session is released, so
        these are exactly the schedules that can really happen (the explorer's choices).
        """
        return [steps[self._next[s]].name for s, steps in self.variant.sessions.items()
                if self._next[s] < len(steps) and s not in self._waiting]

    def play(self, permutation: str | Iterable[str] | None = None) -> RunResult:
        """Play a whole permutation (default: the case's own) and finish the run."""
        text = permutation if isinstance(permutation, str) or permutation is None \
            else " ".join(permutation)
        try:
            for name in self.variant.parse_permutation(text):
                self.step(name)
            return self.finish()
        finally:
            self.close()

    def _launch(self, st: Step, markers: tuple[str, ...] = ()) -> None:
        session = st.session
        job = Job(st, before=self._deadlock_stagger(session), markers=markers,
                  launched_as=len(self._played))
        self._emit("launch", st, st.note_for(self.db.kind))
        self.monitor.launching(session)
        self.workers[session].submit(job)
        blockers = self._await(job) or self._held_by(job)
        if blockers:
            self._waiting[session] = job
            self._emit("wait", st, blockers=blockers)
            self._queued_on_one_row |= self._queued_behind_a_waiter(session, blockers)
        else:
            self._complete(job)
        self._bump()
        self._settle()

    def _queued_behind_a_waiter(self, session: str, blockers: tuple[str, ...]) -> bool:
        """PostgreSQL: queued for a row another session of the run already waits for.

        Such a session waits for the row's *tuple* lock, which the first waiter holds.
        When the row is released both wake up and either may get it: the one order the
        conductor cannot fix (see docs/concepts/conductor.md).
        """
        return (self.db.kind == "postgresql" and bool(set(blockers) & set(self._waiting))
                and self.monitor.queued_for_a_row(session))

    def _await(self, job: Job) -> tuple[str, ...]:
        """Until the step finishes (-> ()) or is seen blocked (-> its blockers)."""
        deadline = time.monotonic() + self.timeout
        session = job.step.session
        if job.done.wait(FIRST_POLL_S):  # most steps finish before anyone needs to look
            return ()
        while not job.done.wait(POLL_S):
            blockers = self.monitor.blockers([session])[session]
            if blockers:
                return blockers
            if time.monotonic() > deadline:
                raise RunFailed(
                    f"step {job.step.name} (session {session}) did not finish within"
                    f" {self.timeout:g} s and no session of this run blocks it")
        return ()

    def _settled(self) -> bool:
        """True when every waiting step is finished or blocked by something still held."""
        open_ = [s for s, job in self._waiting.items() if not job.done.is_set()]
        if not open_:
            return True
        if self.db.kind == "sqlite":
            return all(self.monitor.settled(s) for s in open_)
        graph = self.monitor.blockers(open_)
        if not all(graph.values()):
            return False  # someone was just released and is still running
        return not any(_in_cycle(s, graph) for s in open_)  # PostgreSQL will break a cycle

    def _settle(self) -> None:
        deadline = time.monotonic() + self.timeout
        finished = self._finished_waiters()
        while not self._settled() or self._newly_finished(finished):
            if time.monotonic() > deadline:
                raise self._stuck("is still running")
            with self._changed:
                self._changed.wait(POLL_S)
        self._report_finished()

    def _report_finished(self, force: str | None = None) -> None:
        """Record finished waiters in launch order; a marked step once its marker allows.

        `force`: a session whose finished step must be reported now, marker or not (its
        next step is about to start; "*" for every session, at the end of the run).
        """
        again = True
        while again:
            again = False
            for session, job in list(self._waiting.items()):
                if job.done.is_set() and (force in ("*", session) or not self._held_by(job)):
                    del self._waiting[session]
                    self._emit("complete", job.step, "<... completed>", wall=job.finished)
                    self._complete(job, resumed=True)
                    again = again or job.step.name in self._marker_steps()

    def _marker_steps(self) -> set[str]:
        return {m for job in self._waiting.values() for m in job.markers}

    def _held_by(self, job: Job) -> tuple[str, ...]:
        """What a blocker marker still holds this step's completion for (isolationtester).

        `(*)`: until a later step has been launched; `(other)`: while `other` is active,
        that is, launched and not yet reported complete.
        """
        if "*" in job.markers and len(self._played) <= job.launched_as:
            return ("marked (*)",)
        active = {j.step.name: s for s, j in self._waiting.items() if j is not job}
        return tuple(sorted({active[m] for m in job.markers if m in active}))

    def _finished_waiters(self) -> set[str]:
        return {s for s, job in self._waiting.items() if job.done.is_set()}

    def _newly_finished(self, finished: set[str]) -> bool:
        """SQLite: a waiting step that finished may have freed the lock another waits for.

        Its waiters were refused before that; bump the epoch so that each retries once
        more before it counts as settled. (PostgreSQL's pg_blocking_pids is always current.)
        """
        if self.db.kind != "sqlite":
            return False
        now = self._finished_waiters()
        if now <= finished:
            return False
        finished |= now
        self._bump()
        return True

    def _drain(self, st: Step) -> None:
        """A step of a waiting session: wait (bounded) until that session's step finishes."""
        job = self._waiting[st.session]
        if not job.done.wait(self.timeout):
            raise self._stuck(f"must finish before {st.name} can start", only=st.session)
        self._bump()
        self._settle()
        if st.session in self._waiting:  # finished, but a marker held its report back
            self._report_finished(force=st.session)

    def _stuck(self, why: str, only: str | None = None) -> RunFailed:
        sessions = [only] if only else [s for s, j in self._waiting.items() if not j.done.is_set()]
        graph = self.monitor.blockers(sessions)
        parts = [f"step {self._waiting[s].step.name} (session {s}) {why}, blocked by "
                 f"{', '.join(graph[s]) or 'nothing visible'}" for s in sessions]
        return RunFailed(f"stuck after {self.timeout:g} s: " + "; ".join(parts) +
                         f" [{self.replay_hint()}]")

    def _complete(self, job: Job, resumed: bool = False) -> None:
        if job.crash is not None:
            raise job.crash
        out, st = job.outcome, job.step
        if out.code is not None:
            self._emit("error", st, out.error, code=out.code, wall=job.finished)
            if out.ended_transaction == "rollback":  # (a spec's error leaves it aborted)
                self._emit("rollback", st, "ROLLBACK (after the error)", wall=job.finished)
        elif out.skipped:
            self._emit("skip", st, out.text, wall=job.finished)
        else:
            if out.ended_transaction is None or out.results:
                if not resumed or out.text or out.results:
                    self._emit("complete", st, out.text, results=out.results,
                               wall=job.finished)
                for lock in self.monitor.new_locks(st.session) if self.track_locks else ():
                    self._emit("lock", st, lock, wall=job.finished)
            if out.ended_transaction == "commit":
                self._commits += 1
                self._emit("commit", st, f"COMMIT #{self._commits}", commit_no=self._commits,
                           wall=job.finished)
            elif out.ended_transaction == "rollback":
                self._emit("rollback", st, "ROLLBACK", wall=job.finished)
        if out.ended_transaction:
            self.monitor.forget_locks(st.session)
            if out.ended_transaction == "rollback":
                self._deadlock_ms[st.session] = None  # SET is undone by ROLLBACK

    def _deadlock_stagger(self, session: str):
        """Make the first session to wait the deadlock victim, deterministically.

        PostgreSQL aborts the session whose deadlock timer fires first. Timers start when
        each session begins to wait, often a millisecond apart; a later waiter gets a
        longer timeout so jitter can never reorder them.
        """
        if self.db.kind != "postgresql" or self._spec_sets_deadlock_timeout:
            return None
        want = DEADLOCK_TIMEOUT_MS * (1 + 2 * len(self._waiting))
        if self._deadlock_ms[session] == want:
            return None
        self._deadlock_ms[session] = want
        return lambda conn: self.db.set_deadlock_timeout(conn, want)

    def _bump(self) -> None:
        if self.db.kind == "sqlite":
            self.db.epoch.bump()

    def _emit(self, kind: EventKind, st: Step, detail: str = "", *,
              blockers: tuple[str, ...] = (), code: str | None = None,
              commit_no: int | None = None, results: tuple = (),
              wall: float | None = None) -> None:
        moment = (wall if wall is not None else time.monotonic()) - self._t0
        self.events.append(Event(len(self.events) + 1, kind, st.session, st.name, detail,
                                 blockers, code, commit_no, results, moment * 1000))

    # -- the end ------------------------------------------------------------------------
    def finish(self) -> RunResult:
        """End the run: roll back what idle sessions left open, which may release steps
        still blocked; wait for those; then read the final state.

        Spec files end as isolationtester ends a permutation: steps still blocked are
        waited for first (a statement_timeout may end them), then open transactions go.
        """
        self._check_open()
        try:
            if not self.scenario.raw_sql:
                self._end_open_transactions()
            for session, job in list(self._waiting.items()):
                if not job.done.wait(self.timeout):
                    raise self._stuck("never finished: the permutation ended", only=session)
                self._bump()
                self._settle()
            had_waiters = bool(self._waiting)
            self._report_finished(force="*")
            if self.scenario.raw_sql or had_waiters:
                self._end_open_transactions()
            for name, action in self.variant.session_teardown.items():
                self._session_call(name, action)
            tables = self.stage.read(self.scenario.final_state)
            if self.scenario.teardown is not None:
                self.stage.write(self.scenario.teardown)
            result = RunResult(
                scenario=self.scenario.name, case=self.variant.name, isolation=self.isolation,
                backend=self.db.label, permutation=tuple(self._played),
                events=tuple(self.events), tables=tables,
                notes=tuple(self._notes()), replay=self.replay_hint(),
                sessions=tuple(self.variant.sessions),
                setup_results=tuple(self._setup_results),
            )
            result.verdict = self.variant.invariant(result)
            return result
        finally:
            self.close()

    def _end_open_transactions(self) -> None:
        end = end_raw_transaction if self.scenario.raw_sql else _end_open_transaction
        for name, worker in self.workers.items():
            if name not in self._waiting and worker.call(end, self.timeout):
                self._emit("rollback", Step("(end)", "", session=name),
                           "ROLLBACK (transaction left open at the end of the run)")
                self._bump()
                self._settle()

    def _notes(self) -> list[str]:
        notes = list(self.db.notes)
        if self._queued_on_one_row:
            notes.append(QUEUED_NOTE)
        if self.db.kind == "sqlite" and self.scenario.raw_sql:  # SQLAlchemy drops it; SQLite
            notes = [n.replace("FOR UPDATE is dropped", "FOR UPDATE is a syntax error")
                     for n in notes]  # itself rejects it
        if self.db.kind == "sqlite" and self.isolation != "serializable":
            notes.append(f"SQLite has no {self.isolation.upper()}: every SQLite transaction"
                         " is serializable")
        return notes

    def replay_hint(self) -> str:
        parts = ["python -m lab run"] + ([self.scenario.source] if self.scenario.source else
                                         [self.scenario.name, "--case", self.variant.name])
        parts += ["--isolation", f"'{self.isolation}'", "--permutation",
                 "'" + " ".join(self._played or self.variant.parse_permutation()) + "'"]
        if self.target.kind != "embedded":
            parts += ["--db", f"'{self.target.label}'" if self.target.kind != "sqlite"
                      else {"delete": "sqlite", "wal": "sqlite-wal"}[self.target.journal_mode]]
        return " ".join(parts)

    def _check_open(self) -> None:
        if self._closed:
            raise RunFailed("this run is closed; start a new one")

    def close(self) -> None:
        """Release everything: threads, connections, the run's database. Idempotent.

        A borrowed stage stays open for the next run, unless this run left a step
        unfinished: then nothing on it can be trusted, and it is closed too.
        """
        if self._closed:
            return
        self._closed = True
        _open_runs.discard(self)
        if self.stage is None:
            return
        if self._owns_stage or any(not j.done.is_set() for j in self._waiting.values()):
            self.stage.close()

    def __repr__(self) -> str:
        """What a notebook shows for a fresh run: the cast and the script."""
        lines = [f"{self.scenario.name} / {self.variant.name} / {self.isolation.upper()} / "
                 f"{self.db.label}"]
        for session, steps in self.variant.sessions.items():
            lines.append(f"session {session}:")
            kind = self.db.kind
            width = max(len(s.name) for steps_ in self.variant.sessions.values()
                        for s in steps_)
            lines += [f"  {s.name:<{width}}  {s.note_for(kind)}" for s in steps]
        lines.append("permutation: " + self.variant.permutation)
        return "\n".join(lines)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _end_open_transaction(session) -> bool:
    if session.in_transaction():
        session.rollback()
        return True
    return False


def _in_cycle(start: str, graph: dict[str, tuple[str, ...]]) -> bool:
    seen, todo = set(), list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node == start:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False
