"""The explorer: every feasible interleaving of a case, classified by its invariant.

Feasible means what can really happen: a session whose step is blocked cannot start its
next step, so the explorer never chooses it until it is released. The schedules are
visited depth first, session order first (isolationtester's order), and each is played
from the start on one reused stage whose data is reset between runs. The conductor is
deterministic, so the same prefix always reaches the same state and the same choices.

The orderings are streamed, never listed: the explorer keeps only the current path and
the choices left along it. Their number is known before the first run (`bounds`): past
the default limit, exploring is refused at once.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .bounds import check, orderings
from .db import RunDatabase, Target, resolve
from .errors import StepTimeout
from .runner import DEFAULT_TIMEOUT_S, Outcome, Replay, Run, RunResult, Scenario, classify
from .runner.scenario import normalize_isolation
from .runner.stage import Stage, shared_database

OUTCOMES = tuple(Outcome)


@dataclass(frozen=True)
class Interleaving:
    permutation: tuple[str, ...]  # step names, in the order played
    outcome: Outcome
    detail: str  # the anomaly, the SQLSTATEs, or why it got stuck
    replay: Replay
    queued: bool = False  # two sessions queued for one lock: PostgreSQL picks the winner
    serializable: bool | None = None  # the serial check; None: not checked (or stuck)
    # the orderings this one stands for: 1, or k! when k interchangeable sessions could be
    # renamed into it (each renaming is feasible and ends the same way)
    weight: int = 1


@dataclass
class Exploration:
    scenario: str
    case: str
    isolation: str
    backend: str
    orderings: int  # all orders that keep each session's steps in order
    interleavings: list[Interleaving] = field(default_factory=list)  # those played
    complete: bool = True  # False when a limit stopped it early
    serial_checked: bool = True  # each interleaving also went through the serial check
    seconds: float = 0.0
    reduced: bool = False  # interchangeable sessions: one ordering played per renaming class

    @property
    def feasible(self) -> int:
        """Feasible orderings of the full search, each played or stood for."""
        return sum(i.weight for i in self.interleavings)

    def count(self, outcome: Outcome | str) -> int:
        return sum(i.weight for i in self.interleavings if i.outcome == outcome)

    @property
    def not_serializable(self) -> list[Interleaving]:
        return [i for i in self.interleavings if i.serializable is False]

    @property
    def not_serializable_count(self) -> int:
        return sum(i.weight for i in self.not_serializable)

    @property
    def unchecked(self) -> int:
        """Finished interleavings the serial check skipped (past its bound)."""
        return sum(i.weight for i in self.interleavings
                   if i.serializable is None and i.outcome is not Outcome.STUCK)

    @property
    def anomalies(self) -> list[Interleaving]:
        return [i for i in self.interleavings if i.outcome is Outcome.ANOMALY]

    def __repr__(self) -> str:  # a notebook shows the summary
        return summary([self]).rstrip("\n")


def explore(scenario: Scenario | str, case: str | None = None, isolation: str | None = None,
            db: Target | str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
            progress: Callable[[Exploration], None] | None = None,
            on_result: Callable[[RunResult], None] | None = None,
            database: RunDatabase | None = None, limit: int | None = None,
            serial_check: bool = True, reduce: bool = True, workers: int = 1) -> Exploration:
    """Play every feasible interleaving of one case at one isolation level on one backend.

    `scenario`: a Scenario, a catalog name or a spec file's path; `db` as for `Run`.
    `on_result` sees each finished run (the spec runner prints them as they come).
    `database`: a database from `shared_database`, to share across explorations.
    `limit`: stop after that many interleavings (the first ones, in the same order);
    without it, a case of more than `bounds.DEFAULT_LIMIT` orderings is refused at once.
    `serial_check`: also classify each as serializable or not (lab.runner.serial); each
    serial order is replayed once per exploration, on the same stage.
    `reduce`: play one ordering per renaming of the case's interchangeable sessions.
    `workers`: processes to spread the interleavings over (lab.parallel); the result is
    the same as with one. A scenario no other process can find again by name, `limit`
    and `on_result` keep it in this process.
    """
    ref = scenario if isinstance(scenario, str) else None
    if isinstance(scenario, str):
        from .scenarios import find

        scenario = find(scenario)
    job = Job.of(scenario, ref, case, isolation, db if isinstance(db, Target) else resolve(db),
                 timeout=timeout, serial_check=serial_check, reduce=reduce)
    if workers > 1 and job.findable and limit is None and on_result is None:
        from .parallel import Pool

        with Pool(workers) as pool:
            return next(pool.explore([job], progress=lambda _label: progress))
    found = job.exploration(scenario)
    limit = check(found.orderings, f"{scenario.name} / {found.case}", "orderings", limit)
    started = time.monotonic()
    with Stages(job, scenario, database) as stages:
        for _key, interleaving in walk(job, scenario, stages, on_result=on_result):
            found.interleavings.append(interleaving)
            found.backend = stages.backend
            found.seconds = time.monotonic() - started
            if progress is not None:
                progress(found)
            if limit is not None and len(found.interleavings) >= limit:
                break
        found.complete = not stages.more
    return found


@dataclass(frozen=True)
class Job:
    """One exploration, as another process can set it up again: everything by name."""

    scenario: str  # the name `scenarios.find` knows it by ("" if none)
    case: str
    isolation: str
    target: Target
    timeout: float = DEFAULT_TIMEOUT_S
    serial_check: bool = True
    reduce: bool = True

    @classmethod
    def of(cls, scenario: Scenario, ref: str | None, case: str | None, isolation: str | None,
           target: Target, **options) -> Job:
        from .scenarios import SCENARIOS

        variant = scenario.variant(case)
        if ref is None:
            ref = scenario.source or (scenario.name if SCENARIOS.get(scenario.name) is scenario
                                      else "")
        return cls(ref, variant.name, normalize_isolation(isolation or variant.isolations[0]),
                   target, **options)

    @property
    def findable(self) -> bool:
        return bool(self.scenario)

    @property
    def label(self) -> str:
        return f"{self.scenario} / {self.case} / {self.isolation} / {self.target.label}"

    def find(self) -> Scenario:
        from .scenarios import find

        return find(self.scenario)

    def exploration(self, scenario: Scenario | None = None) -> Exploration:
        """The empty result, with its number of orderings."""
        scenario = scenario or self.find()
        variant = scenario.variant(self.case)
        lengths = [len(steps) for steps in variant.sessions.values()]
        return Exploration(scenario.name, variant.name, self.isolation, "", orderings(lengths),
                           serial_checked=self.serial_check,
                           reduced=self.reduce and bool(variant.interchangeable))


class Stages:
    """The stage one exploration plays on, reused run after run, and built again when a
    stuck run closed it. `more`: whether the walk left choices unplayed."""

    def __init__(self, job: Job, scenario: Scenario, database: RunDatabase | None = None):
        self.job, self.scenario, self.database = job, scenario, database
        self.stage: Stage | None = None
        self.backend = ""
        self.more = False

    def get(self) -> Stage:
        if self.stage is None or self.stage.db is None:
            self.stage = Stage(self.job.target, list(self.scenario.variant(self.job.case).sessions),
                               self.job.isolation, timeout=self.job.timeout,
                               driver=self.scenario.driver, reusable=True, db=self.database)
        return self.stage

    def __enter__(self) -> Stages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.stage is not None:
            self.stage.close()
            self.stage = None


Key = tuple[int, ...]  # the session index of each step played: depth-first order is its order


def walk(job: Job, scenario: Scenario, stages: Stages, *, prefix: Sequence[str] = (),
         split_above: int = 0, on_split: Callable[[Key, list[str]], None] | None = None,
         on_result: Callable[[RunResult], None] | None = None) -> Iterator[tuple[Key, Interleaving]]:
    """Every feasible interleaving that starts with `prefix`, depth first.

    Each is played from the start on the reused stage (the conductor is deterministic, so
    the same prefix always reaches the same state and the same choices). A choice left at
    a depth below `split_above` goes to `on_split` (with its key) as a prefix of its own,
    for another process to walk; the others wait on the path's stack. Keys sort in the order one
    process walks the whole tree.
    """
    variant = scenario.variant(job.case)
    session_of = {st.name: k for k, steps in enumerate(variant.sessions.values())
                  for st in steps}
    names = list(variant.sessions)
    groups = variant.interchangeable if job.reduce else ()
    weight = math.prod(math.factorial(len(g)) for g in groups)
    path, todo = list(prefix), []  # (depth, step): the choices left along the path
    while True:
        run = Run(scenario, variant.name, isolation=job.isolation, stage=stages.get(),
                  timeout=job.timeout, track_locks=False, serial_check=job.serial_check)
        stages.backend = run.db.label
        try:
            for name in path:
                run.step(name)
            while choices := _canonical(run.playable(), path, session_of, names, groups):
                for choice in reversed(choices[1:]):
                    if len(path) < split_above and on_split is not None:
                        on_split(tuple(session_of[s] for s in (*path, choice)), [*path, choice])
                    else:
                        todo.append((len(path), choice))
                path.append(choices[0])
                run.step(choices[0])
            result = run.finish()
            if on_result is not None:
                on_result(result)
            outcome, detail = classify(result)
            found = Interleaving(
                tuple(e.name for e in result.permutation), outcome, detail, result.replay,
                queued=result.queued, weight=weight,
                serializable=result.serial.serializable if result.serial else None)
        except StepTimeout as exc:
            found = Interleaving(tuple(path), Outcome.STUCK, str(exc), run.replay(),
                                 weight=weight)
        finally:
            run.close()
        stages.more = bool(todo)
        yield tuple(session_of[name] for name in path), found
        if not todo:
            return
        depth, choice = todo.pop()  # the deepest: what was pushed later shared path[:depth]
        path = path[:depth] + [choice]


def _canonical(choices: list[str], path: list[str], session_of: dict[str, int],
               names: list[str], groups: tuple[tuple[str, ...], ...]) -> list[str]:
    """The choices that keep each interchangeable group starting in its listed order: of
    the k! renamings of an ordering, exactly one starts them so, and it stands for all."""
    if not groups:
        return choices
    started = {names[session_of[name]] for name in path}
    held = {later for group in groups for first, later in zip(group, group[1:])
            if first not in started}
    return [c for c in choices if names[session_of[c]] in started
            or names[session_of[c]] not in held]


def explorations(cases: Sequence[tuple[Scenario, str]], targets: Sequence[Target],
                 levels: Sequence[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
                 limit: int | None = None, serial_check: bool = True, reduce: bool = True,
                 workers: int = 1,
                 progress: Callable[[str], ProgressBar] | None = None) -> Iterator[Exploration]:
    """The one exploration loop: each case under each level (default: the case's own) on
    each backend, in that order. One process shares one database per backend; `workers`
    processes (lab.parallel) each have their own and play any case's interleavings, with
    the same results. `progress(label)`: a progress bar per exploration."""
    jobs = [Job.of(scenario, None, case, level, target, timeout=timeout,
                   serial_check=serial_check, reduce=reduce)
            for target in targets for scenario, case in cases
            for level in levels or scenario.variant(case).isolations]
    if workers > 1 and limit is None and all(j.findable for j in jobs):
        from .parallel import Pool

        with Pool(workers) as pool:
            yield from pool.explore(jobs, progress=progress)
        return
    for target in targets:
        with shared_database(target) as database:
            for scenario, case in cases:
                variant = scenario.variant(case)
                for level in levels or variant.isolations:
                    label = f"{scenario.name} / {variant.name} / {level} / {target.label}"
                    bar = progress(label) if progress else None
                    found = explore(scenario, case, level, target, timeout=timeout,
                                    progress=bar, database=database, limit=limit,
                                    serial_check=serial_check, reduce=reduce)
                    if bar is not None:
                        bar.done()
                    yield found


def targets(choice: str | Iterable[str] | None) -> list[Target]:
    """'postgresql,sqlite' -> Targets (`resolve` reads each: 'postgresql' is embedded)."""
    names = choice.split(",") if isinstance(choice, str) else list(choice or ["embedded"])
    return [resolve(n.strip()) for n in names]


class ProgressBar:
    """A one-line bar on stderr, for a terminal only: logs and tests get none."""

    def __init__(self, label: str, stream=sys.stderr):
        self.label = label
        self.stream = stream
        self.on = stream.isatty()

    def __call__(self, found: Exploration) -> None:
        if not self.on:
            return
        done, most = len(found.interleavings), found.orderings
        filled = int(30 * done / most) if most else 30
        rate = done / found.seconds if found.seconds else 0.0
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}"
                          f" of at most {most} ({rate:.0f}/s)\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.on:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def summary(explorations: list[Exploration]) -> str:
    """The table and every anomaly's replay line; no timings, so runs diff clean."""
    if not explorations:
        return ""
    first = explorations[0]
    lines = [f"{first.scenario} / {first.case}: {first.orderings} orderings of the steps;"
             " 'feasible' counts those that can happen (a blocked session waits)",
             "(aborted: a database error or a 409 rolled a transaction back; a business rule"
             " saying no counts as fine; not serializable: no serial order of the committed"
             " transactions gives the same results and final state)", ""]
    if not all(e.complete for e in explorations):
        lines[-1:-1] = ["(+: stopped at --limit; more feasible interleavings remain)"]
    if reduced := [e for e in explorations if e.reduced and e.interleavings]:
        weight = reduced[0].interleavings[0].weight
        played = ", ".join(str(len(e.interleavings)) for e in reduced)
        lines[-1:-1] = [f"(interchangeable sessions: one ordering is played for all {weight}"
                        f" renamings of them, which end the same way; {played} played)"]
    cols = ["backend", "isolation", "feasible", *OUTCOMES, "not serializable"]
    rows = [[e.backend, e.isolation, str(e.feasible) + ("" if e.complete else "+"),
             *(str(e.count(o)) for o in OUTCOMES), str(e.not_serializable_count)]
            for e in explorations]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(cols, widths))))
    for r in rows:
        lines.append("  ".join(v.ljust(w) if i < 2 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(r, widths))))
    for e in explorations:
        if e.serial_checked and e.unchecked:
            lines += ["", f"{e.backend} / {e.isolation.upper()}: the serial check could not"
                      f" judge {e.unchecked} interleavings (more serial orders than its bound,"
                      " or a replay that could not run one transaction at a time)"]
        queued = sum(i.queued for i in e.interleavings)
        if queued:
            lines += ["", f"{e.backend} / {e.isolation.upper()}: {queued} interleavings queue two"
                      " sessions for one lock; PostgreSQL decides which goes first, so their"
                      " outcomes may differ between runs"]
        odd = [i for i in e.interleavings if i.outcome in (Outcome.ANOMALY, Outcome.STUCK)]
        if odd:
            kinds = Counter(str(i.outcome) for i in odd)
            lines += ["", f"{e.backend} / {e.isolation.upper()}: "
                      + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))]
            for i in odd:
                lines += [f"  {i.outcome}: {i.detail}", f"    {i.replay.cli}",
                          f"    {i.replay.python}"]
    return "\n".join(lines) + "\n"
