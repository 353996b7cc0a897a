"""The conductor: plays a permutation one step at a time and *detects* who waits for whom.

One engine, two ways in: ``Run.step(name)`` plays a single step (a notebook cell), and
``Run.play(permutation)`` is just a loop over it. After launching a step the conductor
waits until the step finishes or the backend's wait model sees its session blocked.
Then it *settles*: every waiting step is left either finished or still blocked by
something the run has not yet released, and finished ones are recorded in launch order,
as isolationtester prints ``<... completed>``. Nothing sleeps to decide an order; short
polls only observe.

Three collaborators keep this file free of special cases: the `Schedule` (order and
marker rules, no database), the backend's `WaitModel` (how a wait is seen), and the
scenario's `SessionDriver` (how a session runs a step: ORM or spec-file SQL).
"""

from __future__ import annotations

import atexit
import contextlib
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence

from ..db import RunDatabase, Target, resolve
from ..errors import RunFailed, StepTimeout
from .driver import Before
from . import serial
from .outcome import DEADLOCK_CODE, StepError
from .result import Events, Replay, RunResult
from .scenario import Scenario, Step, Variant, normalize_isolation
from .schedule import ANY_LATER_STEP, Entry, Launch, parse_entries
from .stage import Stage
from .trace import Event, EventKind, Notice, Played, ResultSet
from .worker import Job

DEFAULT_TIMEOUT_S = 5.0
QUEUED_NOTE = ("two sessions queued for the same lock: when it is released PostgreSQL"
               " decides which goes first, so this order may not replay identically")
TIMED_VICTIM_NOTE = ("the deadlock victim was chosen by timing, not by the stagger: the"
                     " first waiter's deadlock check ran before the cycle closed (a busy"
                     " machine), so this run may not replay identically")
POLL_S = 0.0002  # how often a wait is looked at; never decides an order
FIRST_POLL_S = 0.0003
# a running step, or a wait the deadlock detector has yet to break, is asked about again
# after a longer pause each time (x2, up to this): each question is a query the server
# answers while the step itself wants the CPU, and a deadlock waits out a timer
MAX_POLL_S = 0.004
# the first waiter's deadlock_timeout in a run played on its own (rank k waits base x
# (1 + 2k)): the cycle must close within it, and a busy machine can take tens of ms to
# launch the closing step; the explorer starts lower and plays a run again at 4x when
# the check below finds the timer was too short (see `victim_by_timing`)
RUN_STAGGER_MS = 200

_open_runs: weakref.WeakSet[Run] = weakref.WeakSet()


@atexit.register
def _close_open_runs() -> None:
    for run in list(_open_runs):
        with contextlib.suppress(Exception):
            run.close()


class Run:
    """One scenario case on one fresh database, with one worker thread per session."""

    def __init__(self, scenario: Scenario | str, case: str | None = None, *,
                 isolation: str | None = None, db: Target | str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, track_locks: bool = True,
                 stage: Stage | None = None, serial_check: bool = True,
                 free_order: bool = False, stagger_ms: int = RUN_STAGGER_MS):
        """`scenario`: a Scenario, a catalog name or a spec file's path. `db`: 'embedded'
        (default), 'sqlite', 'sqlite-wal', a postgresql:// URL, or a Target.
        `stage`: play on an existing stage (the explorer's); it is reset, not closed.
        `serial_check`: at the end, replay the committed transactions one at a time
        (lab.runner.serial); the result's `serial` says whether the run is serializable.
        `free_order`: a session's steps may skip ahead (the serial replay leaves aborted
        transactions out). `stagger_ms`: the first waiter's deadlock_timeout (PostgreSQL).
        """
        if isinstance(scenario, str):
            from ..scenarios import find

            scenario = find(scenario)
        self.scenario = scenario
        self.driver = scenario.driver
        self.track_locks = track_locks
        self.serial_check = serial_check
        self._keeps_state = serial_check or free_order  # a replay reads what the check compares
        self.variant: Variant = scenario.variant(case)
        self.isolation = normalize_isolation(isolation or self.variant.isolations[0])
        self.target = stage.target if stage else db if isinstance(db, Target) else resolve(db)
        self.timeout = timeout
        self.events: list[Event] = []
        self.schedule = self.variant.schedule(free_order=self.driver.free_order or free_order)
        self.played: list[Played] = []  # each finished step and its result, for the replay
        self._steps = self.variant.steps()
        self._jobs: dict[str, Job] = {}  # the waiting sessions' steps in flight
        self._commits = 0
        self._queued = False  # a waiter queued behind another waiter: see QUEUED_NOTE
        self.stagger_ms = stagger_ms
        self._ranks: dict[str, int] = {}  # each launched step's rank in the stagger
        self._victim: str | None = None  # who the stagger makes abort, while a cycle waits
        self._blocked_by: dict[str, tuple[str, ...]] = {}  # as each waiter was first seen
        # a deadlock's victim was not the cycle's first waiter: that waiter's timer fired
        # before the cycle closed (the machine was slow to launch the closing step)
        self.victim_by_timing = False
        self._teardown_failed: list[tuple[str, StepError]] = []
        self._t0 = time.monotonic()
        self._closed = False
        self._owns_stage = stage is None
        self.stage: Stage | None = stage
        _open_runs.add(self)
        try:
            if stage is None:
                self.stage = Stage(self.target, list(self.variant.sessions), self.isolation,
                                   timeout=timeout, driver=self.driver, reusable=serial_check)
            elif stage.used:
                stage.reset()
            self.stage.used = True
            self.db: RunDatabase = self.stage.db
            self.waits = self.stage.waits
            self.workers = self.stage.workers
            self._changed = self.stage.changed
            self._setup_results = self._setup()
        except BaseException:
            self.close()
            raise

    # -- set-up -----------------------------------------------------------------------
    def _setup(self) -> list[ResultSet | Notice]:
        """The run's database arrives seeded; the scenario's own setup goes on top.
        What a spec file's setup SQL prints is kept, as isolationtester prints it."""
        shown: list[ResultSet | Notice] = [*self.driver.setup(self.stage, self.scenario)]
        for name, action in self.driver.session_setup(self.variant).items():
            shown += self._session_call(name, action)
        return shown

    def _session_call(self, session: str, action, *, teardown: bool = False
                      ) -> list[ResultSet | Notice]:
        """A session's own setup or teardown (spec files), not traced. What isolationtester
        prints of it: its notices, then what it returned last. A failed setup ends the
        run; a failed teardown (say, of a session the server closed) is recorded and the
        run goes on, as isolationtester goes on."""
        what = "teardown" if teardown else "setup"
        st = Step(f"the {what} of {session}", action, session=session)
        out = self.workers[session].call(lambda s: self.driver.execute(st, s, None),
                                         self.timeout)
        if out.error is not None and not teardown:
            raise RunFailed(f"session {session}'s setup failed: {out.error.code}"
                            f" {out.error.message}")
        if out.error is not None:
            self._teardown_failed.append((session, out.error))
        return [*self._notices(session, finished=True), *([out.last] if out.last else [])]

    # -- the engine -------------------------------------------------------------------
    def step(self, entry: str | Entry) -> Events:
        """Play one step; return the events it produced (its own and any it released).

        `entry` is a step name, or with isolationtester's blocker marker: `name(*)`
        (report it waiting until a later step), `name(other)` (report its completion
        only once `other` has completed).
        """
        self._check_open()
        if isinstance(entry, str):
            parsed = parse_entries(entry)
            entry = parsed[0] if len(parsed) == 1 else Entry(entry)
        start = len(self.events)
        session = self.schedule.admissible(entry)  # (a refused entry leaves the run usable)
        try:
            if session in self.schedule.waiting:
                self._drain(entry.name, session)
            self._launch(self.schedule.admit(entry))
        except BaseException:
            self.close()
            raise
        return Events(self.events[start:])

    def playable(self) -> list[str]:
        """The next step of each session that can move now (see `Schedule.playable`)."""
        return self.schedule.playable()

    def skips(self, session: str) -> bool:
        """The session's next step will do nothing: its transaction failed, and the driver
        runs nothing more in it. Such a step commutes with every other (lab.explorer)."""
        return session not in self.schedule.waiting and \
            self.driver.skips(self.stage.contexts[session])

    def play(self, permutation: str | Iterable[str | Entry] | None = None) -> RunResult:
        """Play a whole permutation (default: the case's own) and finish the run."""
        try:
            for entry in self._entries(permutation):
                self.step(entry)
            return self.finish()
        finally:
            self.close()

    def _entries(self, permutation) -> tuple[Entry, ...]:
        if permutation is None:
            permutation = self.variant.permutation
        elif not isinstance(permutation, str):
            permutation = tuple(parse_entries(p)[0] if isinstance(p, str) else p
                                for p in permutation)
        return self.schedule.entries(permutation)

    def _launch(self, launch: Launch) -> None:
        st, session = self._steps[launch.entry.name], launch.session
        job = Job(st, launch, before=self._stagger(session))
        self._emit("launch", st, st.note_for(self.db.kind))
        self.waits.launching(session)
        self.workers[session].submit(job)
        blockers = self._await(job) or self.schedule.held_by(launch)
        if blockers:
            self.schedule.wait(launch)
            self._jobs[session] = job
            self._blocked_by[session] = blockers
            if ANY_LATER_STEP not in launch.entry.blockers:  # (*) reports it before reading
                self._emit_notices(st, self._notices(session, finished=False))
            self._emit("wait", st, blockers=blockers)
            self._queued |= self.waits.queued_behind(session, blockers, self._jobs)
        else:
            self._complete(job)
        self.waits.moved()
        self._settle()

    def _stagger(self, session: str) -> Before | None:
        """Rank a step above every session waiting now: its timer is then longer than all
        of theirs, whatever ranks they got when they launched."""
        if self.driver.skips(self.stage.contexts[session]):
            return None  # a step that runs nothing sets no timeout (nor may say it did)
        rank = 1 + max((self._ranks[s] for s in self._jobs), default=-1)
        self._ranks[session] = rank
        return self.waits.stagger(session, rank, self.stagger_ms)

    def _await(self, job: Job) -> tuple[str, ...]:
        """Until the step finishes (-> ()) or is seen blocked (-> its blockers)."""
        deadline = time.monotonic() + self.timeout
        session = job.launch.session
        if job.done.wait(FIRST_POLL_S):  # most steps finish before anyone needs to look
            return ()
        pause = POLL_S
        while not job.done.wait(pause):
            blockers = self.waits.blockers([session])[session]
            if blockers:
                return blockers
            pause = min(2 * pause, MAX_POLL_S)
            if time.monotonic() > deadline:
                raise StepTimeout(
                    f"step {job.step.name} (session {session}) did not finish within"
                    f" {self.timeout:g} s and no session of this run blocks it"
                    f" [{self._replay_text()}]")
        return ()

    def _open_waiters(self) -> list[str]:
        return [s for s, job in self._jobs.items() if not job.done.is_set()]

    def _settle(self) -> None:
        """Until every waiting step is finished, or blocked by something still held."""
        deadline = time.monotonic() + self.timeout
        finished = self._finished_waiters()
        pause = POLL_S
        while not self._settled() or self._newly_finished(finished):
            if time.monotonic() > deadline:
                raise self._stuck("is still running")
            with self._changed:  # a step that ends says so at once; the rest is looked at
                ended = self._changed.wait(pause)  # less often the longer it lasts
            pause = POLL_S if ended else min(2 * pause, MAX_POLL_S)
        self._report_finished()

    def _settled(self) -> bool:
        open_ = self._open_waiters()
        if not open_ or self.waits.settled(open_):
            return True
        if cycle := self.waits.cycle():  # the lowest rank has the shortest timer
            self._victim = min(cycle, key=lambda s: self._ranks.get(s, 0))
        return False

    def _finished_waiters(self) -> set[str]:
        return {s for s, job in self._jobs.items() if job.done.is_set()}

    def _newly_finished(self, finished: set[str]) -> bool:
        """A waiter finished since the last look: True if the wait model must look again."""
        now = self._finished_waiters()
        if now <= finished:
            return False
        finished |= now
        return self.waits.released()

    def _report_finished(self, force: str | None = None) -> None:
        """Record finished waiters in launch order; a marked step once its marker allows.

        `force`: a session whose finished step must be reported now, marker or not (its
        next step is about to start; "*" for every session, at the end of the run).
        """
        again = True
        while again:
            again = False
            for session, job in list(self._jobs.items()):
                self._emit_notices(job.step, self._notices(session, finished=False))
                if job.done.is_set() and (force in ("*", session)
                                          or not self.schedule.held_by(job.launch)):
                    self.schedule.report(session)
                    del self._jobs[session]
                    self._emit("complete", job.step, wall=job.finished, resumed=True)
                    self._complete(job, resumed=True)
                    again = again or job.step.name in self.schedule.marker_names()

    def _drain(self, name: str, session: str) -> None:
        """A step of a waiting session: wait (bounded) until that session's step finishes."""
        job = self._jobs[session]
        if not job.done.wait(self.timeout):
            raise self._stuck(f"must finish before {name} can start", only=session)
        self.waits.moved()
        self._settle()
        if session in self._jobs:  # finished, but a marker held its report back
            self._report_finished(force=session)

    def _stuck(self, why: str, only: str | None = None) -> StepTimeout:
        sessions = [only] if only else self._open_waiters()
        graph = self.waits.blockers(sessions)
        parts = [f"step {self._jobs[s].step.name} (session {s}) {why}, blocked by "
                 f"{', '.join(graph[s]) or 'nothing visible'}" for s in sessions]
        return StepTimeout(f"stuck after {self.timeout:g} s: " + "; ".join(parts) +
                           f" [{self._replay_text()}]")

    def _replay_text(self) -> str:
        replay = self.replay()
        return f"{replay.cli} | in Python: {replay.python}"

    def _complete(self, job: Job, resumed: bool = False) -> None:
        """Record a finished step: what it printed, the rows it locked, how its
        transaction ended, and what its session heard meanwhile (notices where
        isolationtester prints them, notifications last)."""
        if job.crash is not None:
            raise job.crash
        out, st, at = job.result, job.step, job.finished
        self.played.append(Played(st.session, st.name, out, len(self.events)))
        notices = self._notices(st.session, finished=True)
        self._emit_notices(st, [n for n in notices if n.before_first_result], at)
        shown = out.results or (out.error is None and not out.skipped and out.ended is None
                                and (not resumed or out.text))
        if shown:
            self._emit("complete", st, out.text, results=out.results, wall=at)
        self._emit_notices(st, [n for n in notices if not n.before_first_result], at)
        if out.error is not None:
            # (a spec file sets its own timers, and picks its own victim)
            if out.error.code == DEADLOCK_CODE and not self.driver.sends_sql_as_written:
                self.victim_by_timing |= self._by_timing(st.session, resumed)
            self._emit("error", st, out.error.message, code=out.error.code,
                       error=out.error.kind, wall=at)
            if out.ended == "rollback":  # (a spec's error leaves its transaction aborted)
                self._emit("rollback", st, "ROLLBACK (after the error)", wall=at,
                           after_error=True)
        elif out.skipped:
            self._emit("skip", st, out.text, wall=at)
        else:
            if out.ended is None or out.results:
                for lock in self.waits.new_locks(st.session) if self.track_locks else ():
                    self._emit("lock", st, str(lock), lock=lock, wall=at)
            if out.ended == "commit":
                self._commits += 1
                self._emit("commit", st, f"COMMIT #{self._commits}", commit_no=self._commits,
                           wall=at)
            elif out.ended == "rollback":
                self._emit("rollback", st, "ROLLBACK", wall=at)
        for n in self.driver.notifications(self.workers[st.session].session):
            self._emit("notify", st, str(n), notification=n, wall=at)
        if out.ended:
            self.waits.ended(st.session, rolled_back=out.ended == "rollback")

    def _by_timing(self, victim: str, seen_waiting: bool) -> bool:
        """Whether timing, not the stagger, chose this deadlock's victim: the stagger's is
        the lowest rank of the cycle. Where the conductor did not see the cycle (it
        broke between two looks): a step that failed before it was seen waiting closed
        the cycle, launched above every waiter; one seen waiting is judged against the
        sessions it was seen waiting for."""
        expected, self._victim = self._victim, None
        if expected is not None:
            return victim != expected
        if not seen_waiting:
            return self._ranks.get(victim, 0) > 0
        cycle = [victim, *(s for s in self._blocked_by.get(victim, ()) if s in self._ranks)]
        return min(cycle, key=lambda s: self._ranks.get(s, 0)) != victim

    def _notices(self, session: str, *, finished: bool) -> list[Notice]:
        return self.driver.notices(self.workers[session].session, finished=finished)

    def _emit_notices(self, st: Step, notices: list[Notice], wall: float | None = None) -> None:
        for n in notices:
            self._emit("notice", st, n.message, notice=n, wall=wall)

    def _emit(self, kind: EventKind, st: Step, detail: str = "", *,
              wall: float | None = None, **fields) -> None:
        moment = (wall if wall is not None else time.monotonic()) - self._t0
        self.events.append(Event(len(self.events) + 1, kind, st.session, st.name,
                                 detail, wall_ms=moment * 1000, **fields))

    # -- the end ------------------------------------------------------------------------
    def finish(self) -> RunResult:
        """End the run, read the final state, and judge it (and check it, see serial_check).

        Python scenarios roll back what idle sessions left open first, which may release
        steps still blocked, then wait for those. Spec files end as isolationtester ends
        a permutation: blocked steps are waited for first (a statement_timeout may end
        them), then each session's teardown runs, in whatever transaction the session
        left open (its COMMIT commits it); what is still open is rolled back before the
        global teardown. The driver says which.
        """
        self._check_open()
        try:
            tables, state, shown = self._wind_up()
            result = RunResult(
                scenario=self.scenario.name, case=self.variant.name, isolation=self.isolation,
                backend=self.db.label, permutation=tuple(self.schedule.played),
                events=tuple(self.events), tables=tables,
                notes=tuple(self._notes()), replay=self.replay(),
                sessions=tuple(self.variant.sessions),
                setup_results=tuple(self._setup_results), teardown_results=tuple(shown),
                teardown_failed=tuple(self._teardown_failed),
                queued=self._queued, victim_by_timing=self.victim_by_timing,
            )
            if self.serial_check:
                result.serial = serial.check(self.played, self.events, result.sessions,
                                             state, serial.replayer(self))
            result.verdict = self.variant.invariant(result)
            return result
        finally:
            self.close()

    def final_state(self) -> Mapping[str, tuple]:
        """End the run as `finish` does, unjudged: the state the serial check compares."""
        self._check_open()
        try:
            return self._wind_up()[1]
        finally:
            self.close()

    def _wind_up(self) -> tuple[dict[str, tuple[dict, ...]], Mapping[str, tuple],
                                list[ResultSet]]:
        """Await the waiters, end open transactions, read the final state; tear down.
        Returns the final-state rows, the state the serial check compares, and what the
        teardowns printed (spec files)."""
        if self.driver.ends_idle_first:
            self._end_open_transactions()
        for session in list(self._jobs):
            job = self._jobs.get(session)
            if job is None:  # it finished, and was reported, while an earlier one settled
                continue
            if not job.done.wait(self.timeout):
                raise self._stuck("never finished: the permutation ended", only=session)
            self.waits.moved()
            self._settle()
        had_waiters = bool(self._jobs)
        self._report_finished(force="*")
        shown = [item for name, action in self.driver.session_teardown(self.variant).items()
                 for item in self._session_call(name, action, teardown=True)]
        if not self.driver.ends_idle_first or had_waiters:
            self._end_open_transactions()
        tables = self.stage.read(self.scenario.final_state)
        state = self.driver.serial_state(self.stage, tables) \
            if self._keeps_state else tables
        shown += self.driver.teardown(self.stage)
        return tables, state, shown

    def _end_open_transactions(self) -> None:
        for name, worker in self.workers.items():
            if name not in self._jobs and worker.call(self.driver.end_transaction,
                                                      self.timeout):
                self._emit("end", Step("", "", session=name),
                           "ROLLBACK (transaction left open at the end of the run)")
                self.waits.ended(name, rolled_back=True)
                self.waits.moved()
                self._settle()

    def _notes(self) -> list[str]:
        notes = self.db.run_notes(self.isolation, self.driver.sends_sql_as_written)
        return notes + [QUEUED_NOTE] * self._queued + [TIMED_VICTIM_NOTE] * self.victim_by_timing

    def replay(self, played: Sequence[Entry] | None = None) -> Replay:
        """This run's order so far (or the case's own) as a command and as Python."""
        order = " ".join(map(str, played or self.schedule.played
                             or self._entries(None)))
        args = self.driver.replay_args(self.scenario, self.variant)
        cli = ["python -m lab run", *args, "--isolation", f"'{self.isolation}'",
               "--permutation", f"'{order}'"]
        db = self.target.cli_arg
        python = (f"{self.driver.replay_python(self.scenario, self.variant)},"
                  f" isolation={self.isolation!r}" + (f", db={db!r}" if db else "") +
                  f").play({order!r})")
        return Replay(" ".join(cli + (["--db", f"'{db}'" if "://" in db else db] if db else [])),
                      python)

    def replay_hint(self) -> str:
        return self.replay().cli

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
        if self._owns_stage or any(not j.done.is_set() for j in self._jobs.values()):
            self.stage.close()

    def __repr__(self) -> str:
        """What a notebook shows for a fresh run: the cast and the script."""
        lines = [f"{self.scenario.name} / {self.variant.name} / {self.isolation.upper()} / "
                 f"{self.db.label}"]
        width = max(len(s.name) for steps in self.variant.sessions.values() for s in steps)
        for session, steps in self.variant.sessions.items():
            lines.append(f"session {session}:")
            lines += [f"  {s.name:<{width}}  {s.note_for(self.db.kind)}" for s in steps]
        own = self.variant.permutation
        lines.append("permutation: " + (own if isinstance(own, str) else " ".join(map(str, own))))
        return "\n".join(lines)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
