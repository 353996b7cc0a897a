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

import bisect
import itertools
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from .bounds import check, orderings
from .db import RunDatabase, Target, resolve
from .errors import RunFailed, StepTimeout
from .runner import (DEFAULT_TIMEOUT_S, Outcome, Replay, Run, RunResult, Scenario, Variant,
                     classify)
from .runner.scenario import normalize_isolation
from .runner.stage import Stage, shared_database

OUTCOMES = tuple(Outcome)
# the first waiter's deadlock_timeout while exploring (rank k waits this x (1 + 2k)): low,
# since a run whose victim timing chose is played again with timers 4 times as long
STAGGER_MS = 20
REPLAYS = 3


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
    # times it was played again because timing, not the stagger, chose a deadlock's
    # victim (a busy machine); never part of a comparison: the result is the same
    replayed: int = field(default=0, compare=False)


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

    @property
    def reduced(self) -> bool:
        """Some interleaving played stands for more than one ordering of the full search."""
        return any(i.weight != 1 for i in self.interleavings)

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
                           serial_checked=self.serial_check)


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
    tree = _Tree.of(job, variant)
    path, todo = list(prefix), []  # (depth, step): the choices left along the path
    while True:
        for attempt in range(REPLAYS + 1):  # again, with longer timers, if the victim
            run = Run(scenario, variant.name, isolation=job.isolation,  # check says timing
                      stage=stages.get(), timeout=job.timeout, track_locks=False,  # chose it
                      serial_check=job.serial_check, stagger_ms=STAGGER_MS * 4 ** attempt)
            stages.backend = run.db.label
            try:
                found, result, played, left = tree.play(run, path)
            finally:
                run.close()
            if not run.victim_by_timing:
                break
        else:
            raise RunFailed(f"a deadlock's victim was still decided by timing with a first"
                            f" waiter's timer of {STAGGER_MS * 4 ** REPLAYS} ms: the machine"
                            f" is too busy [{found.replay.cli}]")
        for depth, choice in left:
            if depth < split_above and on_split is not None:
                split = [*played[:depth], choice]
                on_split(tuple(tree.session_of[s] for s in split), split)
            else:
                todo.append((depth, choice))
        if on_result is not None and result is not None:
            on_result(result)
        stages.more = bool(todo)
        yield tuple(tree.session_of[name] for name in played), replace(found, replayed=attempt)
        if not todo:
            return
        depth, choice = todo.pop()  # the deepest: what was pushed later shared path[:depth]
        path = played[:depth] + [choice]


@dataclass(frozen=True)
class _Tree:
    """One case's tree of choices, as `walk` plays it."""

    reduce: bool
    session_of: dict[str, int]  # step name -> session index
    names: list[str]  # session names, in order
    groups: tuple[tuple[str, ...], ...]  # interchangeable sessions, when reducing
    weight: int  # the renamings each interleaving stands for: the product of k!

    @classmethod
    def of(cls, job: Job, variant: Variant) -> _Tree:
        groups = variant.interchangeable if job.reduce else ()
        return cls(job.reduce, {st.name: k for k, steps in enumerate(variant.sessions.values())
                                for st in steps}, list(variant.sessions), groups,
                   math.prod(math.factorial(len(g)) for g in groups))

    def play(self, run: Run, prefix: list[str]
             ) -> tuple[Interleaving, RunResult | None, list[str], list[tuple[int, str]]]:
        """One leaf: the prefix, then the first choice at every point after it. Returns
        the interleaving, the run's result (None if stuck), the path played, and the other
        choices met on the way, each with its depth, in the order they were met."""
        path, left = list(prefix), []
        skipped: set[int] = set()  # positions in the path of steps that did nothing
        skips = (lambda step: run.skips(self.names[self.session_of[step]])) \
            if self.reduce else (lambda step: False)
        weight = self.weight
        try:
            for depth, name in enumerate(path):
                if skips(name):
                    skipped.add(depth)
                run.step(name)
            while choices := _canonical(run.playable(), path, self.session_of, self.names,
                                        self.groups):
                if idle := [c for c in choices if skips(c)]:
                    choices = idle[:1]  # a step that does nothing: now, for all its places
                    skipped.add(len(path))
                left += [(len(path), choice) for choice in reversed(choices[1:])]
                path.append(choices[0])
                run.step(choices[0])
            result = run.finish()
        except StepTimeout as exc:
            return (Interleaving(tuple(path), Outcome.STUCK, str(exc), run.replay(),
                                 weight=weight * placements(path, skipped, self.session_of)),
                    None, path, left)
        outcome, detail = classify(result)
        return (Interleaving(tuple(e.name for e in result.permutation), outcome, detail,
                             result.replay, queued=result.queued,
                             weight=weight * placements(path, skipped, self.session_of),
                             serializable=result.serial.serializable if result.serial else None),
                result, path, left)


def placements(path: Sequence[str], skipped: set[int], session_of: dict[str, int]) -> int:
    """The orderings of the full search this one stands for, by where its skipped steps
    could have gone.

    A skipped step sends nothing and waits for nothing, so moving it changes no other
    step. The explorer plays each run of them (a session's steps from the failure to its
    COMMIT or ROLLBACK) as soon as it can; in the full search the run may sit anywhere
    before the session's next step. Counted gap by gap between the other steps: in each
    gap the runs allowed there place some of their steps, interleaved in any way (a
    multinomial), and a run must be complete by the gap just before its session's next
    step.
    """
    if not skipped:
        return 1
    rest = [k for k in range(len(path)) if k not in skipped]
    runs: list[list[int]] = []  # each: [session, steps, first gap, last gap]
    for k in sorted(skipped):
        session = session_of[path[k]]
        gap = bisect.bisect_left(rest, k)
        same = [r for r in runs if r[0] == session and r[3] >= gap]
        if same:  # no step of the session ran since: the same run goes on
            same[0][1] += 1
            continue
        nxt = next((r for r in rest if r > k and session_of[path[r]] == session), None)
        runs.append([session, 1, gap, len(rest) if nxt is None else bisect.bisect_left(rest, nxt)])
    counts = {tuple(0 for _ in runs): 1}  # steps placed per run -> ways
    for gap in range(len(rest) + 1):
        after: dict[tuple[int, ...], int] = {}
        for placed, ways in counts.items():
            for more in itertools.product(*(
                    range(steps - done + 1) if first <= gap <= last else (0,)
                    for (_, steps, first, last), done in zip(runs, placed))):
                now = tuple(d + m for d, m in zip(placed, more))
                if any(n < r[1] for n, r in zip(now, runs) if r[3] == gap):
                    continue  # a run not complete before its session's next step
                mixed = math.factorial(sum(more))
                for m in more:
                    mixed //= math.factorial(m)
                after[now] = after.get(now, 0) + ways * mixed
        counts = after
    return sum(counts.values())


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
        # orderings covered so far: a reduced search plays fewer, each standing for several
        done, most = found.feasible, found.orderings
        filled = int(30 * done / most) if most else 30
        rate = len(found.interleavings) / found.seconds if found.seconds else 0.0
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
    if reduced := [e for e in explorations if e.reduced]:
        played = ", ".join(f"{len(e.interleavings)} played for {e.feasible}" for e in reduced)
        lines[-1:-1] = ["(exact reductions: interchangeable sessions are played in one order"
                        " and counted for every renaming; the steps of a failed transaction,"
                        " which send nothing, are played once and counted for every place they"
                        f" could take; {played})"]
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
