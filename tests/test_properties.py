"""Random workloads of the scheduling services, in random feasible orders (Hypothesis).

Each example is a workload (`lab.workload`: 2-4 sessions of edits, swap requests and
executions, bookings, call changes and at most one generation), an isolation level, a
backend, and the choices that pick, at every point of the run, which playable step goes
next: a random feasible schedule through the conductor. The fixed services must keep
invariants 1-7 in every one; for each naive service Hypothesis must find a violation,
shrink it, and print a replay line that plays it again.

CI runs the derandomized profile "ci" (the same examples every time). By hand, for
longer: ``HYPOTHESIS_PROFILE=soak python -m pytest tests/test_properties.py``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

import lab
from lab import Outcome, Run, RunResult
from lab.db import resolve
from lab.runner import ISOLATION_LEVELS
from lab.runner.stage import Stage, shared_database
from lab.workload import SESSIONS, name, ops, scenario

BACKENDS = ("embedded", "sqlite")
QUIET = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("ci", derandomize=True, max_examples=25, **QUIET)
settings.register_profile("soak", max_examples=1000, **QUIET)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


@dataclass(frozen=True)
class Case:
    workload: str
    variant: str
    level: str
    backend: str
    picks: tuple[int, ...]  # at each step, which playable step (modulo how many) goes next


@st.composite
def cases(draw, variant: str, kinds: str = "EBSC", generation: bool | None = None,
          sessions: int = len(SESSIONS)) -> Case:
    """`generation`: always one G, never, or (None) as Hypothesis likes."""
    pool = [(k, a) for k in kinds for a in ops.ARGS[k]]
    programs = draw(st.lists(st.lists(st.sampled_from(pool), min_size=1, max_size=2),
                             min_size=2, max_size=sessions))
    if generation or generation is None and draw(st.booleans()):
        programs[draw(st.integers(0, len(programs) - 1))].insert(0, ("G", None))
    return Case(name(programs), variant, draw(st.sampled_from(ISOLATION_LEVELS)),
                draw(st.sampled_from(BACKENDS)),
                tuple(draw(st.lists(st.integers(0, 3), max_size=30))))


@pytest.fixture(scope="module")
def stages():
    """Stages to play the examples on, one database per backend for all of them.

    A stage (its sessions' connections) is kept while the next example has the same
    backend, sessions and level, as shrinking's examples mostly do; the run resets it.
    """
    with contextlib.ExitStack() as stack:
        databases = {b: stack.enter_context(shared_database(resolve(b))) for b in BACKENDS}
        kept: dict[tuple, Stage] = {}

        def stage(case: Case, sessions: list[str]) -> Stage:
            key = (case.backend, tuple(sessions), case.level)
            if key not in kept or kept[key].db is None:  # (a stuck run closes its stage)
                for old in kept.values():
                    old.close()
                kept.clear()
                kept[key] = Stage(resolve(case.backend), sessions, case.level, timeout=5.0,
                                  db=databases[case.backend])
            return kept[key]

        yield stage
        for old in kept.values():
            old.close()


def play(case: Case, stages) -> RunResult:
    """The case's workload through the conductor, each next step chosen by its picks."""
    workload = scenario(case.workload)
    variant = workload.variant(case.variant)
    run = Run(workload, case.variant, isolation=case.level,
              stage=stages(case, list(variant.sessions)))
    picks = iter(case.picks)
    while choices := run.playable():
        run.step(choices[next(picks, 0) % len(choices)])
    return run.finish()


@settings(settings.get_profile(PROFILE))
@given(case=cases("fixed"))
def test_the_fixed_services_keep_invariants_1_to_7(case, stages):
    result = play(case, stages)
    assert result.verdict.holds, f"{result.verdict}\nreplay: {result.replay.python}"


# each naive service: the operations of its race, and the words of its violation
NAIVE = {"edit": ("E", False, "lost update"), "swap": ("S", False, "do not chain"),
         "booking": ("B", False, "3 residents"), "call change": ("C", False, "nobody on call"),
         "generation": ("S", True, "during a generation")}


@pytest.mark.parametrize(("kinds", "generation", "words"), NAIVE.values(), ids=NAIVE.keys())
def test_hypothesis_finds_and_shrinks_each_naive_service(kinds, generation, words, stages,
                                                        capsys):
    search = settings(settings.get_profile(PROFILE), max_examples=200,
                      phases=[Phase.generate, Phase.shrink])
    first: list[Case] = []

    def broken(case: Case) -> bool:
        if words not in play(case, stages).verdict.text:
            return False
        first[:] = first or [case]
        return True

    found = find(cases("naive", kinds, generation, sessions=3), broken, settings=search)
    result = play(found, stages)
    with capsys.disabled():
        print(f"\nnaive {kinds}{' with G' if generation else ''}: found {first[0].workload},"
              f" shrunk to {found.workload} at {found.level} on {found.backend}:"
              f" {result.verdict}\n  replay: {result.replay.python}")
    assert result.verdict.outcome is Outcome.ANOMALY and words in result.verdict.text
    assert _size(found) <= _size(first[0]) and _size(found)[0] <= 3 + generation
    again = eval(result.replay.python, {"Run": Run, "lab": lab})  # the printed line, as is
    assert again.verdict.outcome is Outcome.ANOMALY and again.verdict.text == result.verdict.text


def _size(case: Case) -> tuple[int, int]:
    """(operations, steps chosen off the first): what shrinking makes smaller."""
    programs = case.workload.split(":", 1)[1].split("/")
    return sum(p.count("+") + 1 for p in programs), sum(1 for p in case.picks if p)
