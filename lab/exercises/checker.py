"""The checker for "write the fix" exercises: the learner's function against every order.

The exercise's scenario gets one extra case, built by the exercise's step factory around
the learner's function, and the explorer plays every feasible interleaving of it under
every isolation level on both backends. A combination holds when none of its
interleavings ends in an outcome the exercise counts as broken (an anomaly, a stuck run,
and for a deadlock exercise a deadlock). The first break comes with a replay line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..explorer import OUTCOMES, Exploration, Interleaving, explorations, targets
from ..runner import ISOLATION_LEVELS, Replay, Run, RunResult, Scenario
from ..runner.scenario import normalize_isolation
from .kinds import Fix

CASE = "exercise"
BACKENDS = "postgresql,sqlite"


def fix_of(name: str) -> tuple[Scenario, Fix]:
    from ..scenarios import get

    scenario = get(name)
    if not isinstance(scenario.exercise, Fix):
        raise UsageError(f"{name!r} has no 'write the fix' exercise; those that do: "
                         + ", ".join(fixes()))
    return scenario, scenario.exercise


def fixes() -> list[str]:
    from ..scenarios import SCENARIOS

    return [n for n, s in SCENARIOS.items() if isinstance(s.exercise, Fix)]


def playground(name: str, fn: Callable[..., Any]) -> Scenario:
    """The scenario with one case: the race, with `fn` in place of the service step."""
    if not callable(fn):
        raise UsageError(f"expected your function, got {fn!r}")
    scenario, fix = fix_of(name)
    case = dataclasses.replace(fix.case(fn), name=CASE, isolations=ISOLATION_LEVELS)
    return dataclasses.replace(scenario, variants=(case,), matrix=(), exercise=None)


@dataclass(frozen=True)
class Combination:
    exploration: Exploration
    db: str  # what --db takes to choose its backend again
    holds: bool
    first_break: Interleaving | None


@dataclass
class Report:
    """Which level x backend combinations hold; `passed` when all of them do."""

    exercise: str
    function: str
    combinations: list[Combination]
    replay_cli: str = ""
    replay_python: str = ""

    @property
    def passed(self) -> bool:
        return all(c.holds for c in self.combinations)

    @property
    def first_break(self) -> Combination | None:
        return next((c for c in self.combinations if c.first_break is not None), None)

    def __repr__(self) -> str:
        runs = sum(c.exploration.feasible for c in self.combinations)
        lines = [f"check {self.exercise} with your {self.function}: {runs} interleavings,"
                 " every feasible one, under each level on each backend", ""]
        cols = ["backend", "isolation", "feasible", *OUTCOMES, "holds"]
        rows = [[c.exploration.backend, c.exploration.isolation,
                 str(c.exploration.feasible),
                 *(str(c.exploration.count(o)) for o in OUTCOMES),
                 "yes" if c.holds else "NO"] for c in self.combinations]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(cols)]
        for r in [cols, *rows]:
            lines.append("  ".join(v.ljust(w) if i < 2 else v.rjust(w)
                                   for i, (v, w) in enumerate(zip(r, widths))))
        lines.append("")
        broken = [c for c in self.combinations if not c.holds]
        if not broken:
            lines.append(f"PASSED: your {self.function} holds in all {len(rows)} combinations.")
            return "\n".join(lines)
        found, first = self.first_break.exploration, self.first_break.first_break
        lines += [f"FAILED: {len(broken)} of {len(rows)} combinations break.",
                  f"first break: {found.backend} / {found.isolation.upper()}:"
                  f" {first.outcome}: {first.detail}",
                  f"  permutation: {' '.join(first.permutation)}",
                  f"  replay: {self.replay_cli}",
                  f"  in Python: {self.replay_python}"]
        return "\n".join(lines)


def check(name: str, fn: Callable[..., Any], *, db: str = BACKENDS,
          levels: Sequence[str] = ISOLATION_LEVELS) -> Report:
    """Play every feasible interleaving of exercise `name` with `fn` in place, under each
    of `levels` on each backend of `db`; report which combinations hold."""
    scenario = playground(name, fn)
    fix = fix_of(name)[1]
    levels = [normalize_isolation(level) for level in levels]
    chosen = targets(db)
    report = Report(name, fix.function, [])
    for k, found in enumerate(explorations([(scenario, CASE)], chosen, levels)):
        broken = [i for i in found.interleavings if i.outcome in fix.breaks]
        report.combinations.append(Combination(
            found, chosen[k // len(levels)].cli_arg or "postgresql",
            not broken and found.complete, broken[0] if broken else None))
    broken = report.first_break
    if broken is not None:
        report.replay_cli, report.replay_python = replay_lines(
            name, fix.function, broken.exploration.isolation, broken.db,
            " ".join(broken.first_break.permutation))
    return report


def replay_lines(name: str, function: str, isolation: str, db: str,
                 permutation: str) -> tuple[str, str]:
    """One broken interleaving again: from a terminal (your function saved in a file),
    and from Python."""
    db_arg = f"'{db}'" if "://" in db else db
    cli = (f"python -m lab check {name} YOUR_FILE.py:{function} --isolation '{isolation}'"
           f" --db {db_arg} --permutation '{permutation}'")
    python = (f"exercises.replay({name!r}, {function}, isolation={isolation!r}, db={db!r},"
              f" permutation={permutation!r})")
    return cli, python


def replay(name: str, fn: Callable[..., Any], *, isolation: str, db: str | None = None,
           permutation: str | None = None) -> RunResult:
    """Play exercise `name` once with `fn` in place: the run a replay line names."""
    run = Run(playground(name, fn), CASE, isolation=isolation, db=db)
    result = run.play(permutation)
    result.replay = Replay(*replay_lines(name, getattr(fn, "__name__", "your_function"),
                                         result.isolation, run.target.cli_arg or "postgresql",
                                         " ".join(map(str, result.permutation))))
    return result
