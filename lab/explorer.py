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


@dataclass
class Exploration:
    scenario: str
    case: str
    isolation: str
    backend: str
    orderings: int  # all orders that keep each session's steps in order
    interleavings: list[Interleaving] = field(default_factory=list)
    complete: bool = True  # False when a limit stopped it early
    serial_checked: bool = True  # each interleaving also went through the serial check
    seconds: float = 0.0

    def count(self, outcome: Outcome | str) -> int:
        return sum(1 for i in self.interleavings if i.outcome == outcome)

    @property
    def not_serializable(self) -> list[Interleaving]:
        return [i for i in self.interleavings if i.serializable is False]

    @property
    def unchecked(self) -> int:
        """Finished interleavings the serial check skipped (past its bound)."""
        return sum(1 for i in self.interleavings
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
            serial_check: bool = True) -> Exploration:
    """Play every feasible interleaving of one case at one isolation level on one backend.

    `scenario`: a Scenario, a catalog name or a spec file's path; `db` as for `Run`.
    `on_result` sees each finished run (the spec runner prints them as they come).
    `database`: a database from `shared_database`, to share across explorations.
    `limit`: stop after that many interleavings (the first ones, in the same order);
    without it, a case of more than `bounds.DEFAULT_LIMIT` orderings is refused at once.
    `serial_check`: also classify each as serializable or not (lab.runner.serial); each
    serial order is replayed once per exploration, on the same stage.
    """
    if isinstance(scenario, str):
        from .scenarios import find

        scenario = find(scenario)
    variant = scenario.variant(case)
    isolation = normalize_isolation(isolation or variant.isolations[0])
    target = db if isinstance(db, Target) else resolve(db)
    lengths = [len(steps) for steps in variant.sessions.values()]
    found = Exploration(scenario.name, variant.name, isolation, "", orderings(lengths),
                        serial_checked=serial_check)
    limit = check(found.orderings, f"{scenario.name} / {variant.name}", "orderings", limit)
    started = time.monotonic()
    stage: Stage | None = None
    path: list[str] = []  # the steps of the run being played
    todo: list[tuple[int, str]] = []  # (depth, step): the choices left along the path
    try:
        while True:
            if stage is None or stage.db is None:  # (a stuck run closes the stage it used)
                stage = Stage(target, list(variant.sessions), isolation, timeout=timeout,
                              driver=scenario.driver, reusable=True, db=database)
            run = Run(scenario, variant.name, isolation=isolation, stage=stage,
                      timeout=timeout, track_locks=False, serial_check=serial_check)
            found.backend = run.db.label
            try:
                for name in path:
                    run.step(name)
                while choices := run.playable():
                    todo += [(len(path), c) for c in reversed(choices[1:])]
                    path.append(choices[0])
                    run.step(choices[0])
                result = run.finish()
                if on_result is not None:
                    on_result(result)
                outcome, detail = classify(result)
                found.interleavings.append(Interleaving(
                    tuple(e.name for e in result.permutation), outcome, detail,
                    result.replay, queued=result.queued,
                    serializable=result.serial.serializable if result.serial else None))
            except StepTimeout as exc:
                found.interleavings.append(Interleaving(tuple(path), Outcome.STUCK, str(exc),
                                                        run.replay()))
            finally:
                run.close()
            found.seconds = time.monotonic() - started
            if progress is not None:
                progress(found)
            if not todo or limit is not None and len(found.interleavings) >= limit:
                break
            depth, choice = todo.pop()  # the deepest: what was pushed later shared path[:depth]
            path = path[:depth] + [choice]
        found.complete = not todo
    finally:
        if stage is not None:
            stage.close()
    return found


def explorations(cases: Sequence[tuple[Scenario, str]], targets: Sequence[Target],
                 levels: Sequence[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
                 limit: int | None = None, serial_check: bool = True,
                 progress: Callable[[str], ProgressBar] | None = None) -> Iterator[Exploration]:
    """The one exploration loop: each case under each level (default: the case's own) on
    each backend, one shared database per backend. `progress(label)`: a progress bar."""
    for target in targets:
        with shared_database(target) as database:
            for scenario, case in cases:
                variant = scenario.variant(case)
                for level in levels or variant.isolations:
                    label = f"{scenario.name} / {variant.name} / {level} / {target.label}"
                    bar = progress(label) if progress else None
                    found = explore(scenario, case, level, target, timeout=timeout,
                                    progress=bar, database=database, limit=limit,
                                    serial_check=serial_check)
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
    cols = ["backend", "isolation", "feasible", *OUTCOMES, "not serializable"]
    rows = [[e.backend, e.isolation, str(len(e.interleavings)) + ("" if e.complete else "+"),
             *(str(e.count(o)) for o in OUTCOMES), str(len(e.not_serializable))]
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
