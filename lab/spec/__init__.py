"""Spec files in PostgreSQL's isolationtester format: parse, run, print.

The runner imports this package's psql table layout, so the runner's own names are
imported where they are used, not at the top.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..db import Target
    from ..runner import RunResult, Scenario


def load_scenario(path: str | os.PathLike, *, superuser: bool = False) -> Scenario:
    """A spec file as a scenario the runner, explorer and plot take like any other.

    Its SQL runs as a role of its own that is no superuser; `superuser=True`
    (``--superuser``) runs it as the server's superuser, which can run any program as the
    server's OS user: only for spec files you would run as a shell script.
    """
    from .parser import load
    from .scenario import to_scenario

    scenario = to_scenario(load(path), os.fspath(path))
    return as_superuser(scenario) if superuser else scenario


def as_superuser(scenario: Scenario) -> Scenario:
    """The same spec, its SQL run as a superuser (see `load_scenario`)."""
    from ..errors import UsageError
    from .driver import SpecDriver

    if not isinstance(scenario.driver, SpecDriver):
        raise UsageError(f"--superuser is for spec files; {scenario.name!r} is the lab's own"
                         " scenario, which runs as the lab's login already")
    # (source: a process that loads the file again by its path would not run it as one)
    return replace(scenario, driver=replace(scenario.driver, superuser=True), source="")


def planned(scenario: Scenario, permutation: str | None) -> tuple[int, str, str]:
    """(how many runs `run_spec` would play, what, of what): for `bounds.check`."""
    from ..bounds import orderings

    what = f"{scenario.name} / {scenario.variants[0].name}"
    if permutation is not None:
        return 1, what, "permutations"
    if scenario.driver.listed:
        return len(scenario.driver.listed), what, "permutation lines"
    return orderings([len(s) for s in scenario.variants[0].sessions.values()]), what, "orderings"


def run_spec(spec: Scenario | str, *, db: Target | str | None = None,
             isolation: str = "read committed", timeout: float | None = None,
             permutation: str | None = None, serial_check: bool = False,
             limit: int | None = None,
             on_result: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Play a spec as isolationtester would: `permutation`, else the file's permutation
    lines, else every feasible order (in isolationtester's order). One stage for all.
    `serial_check`: check each run against the serial orders (`RunResult.serial`).
    `limit`: play the first that many; without it, more than `bounds.DEFAULT_LIMIT`
    permutations or orderings are refused before the first is played."""
    from ..bounds import check
    from ..db import Target, resolve
    from ..runner import DEFAULT_TIMEOUT_S, Run
    from ..runner.stage import Stage

    timeout = timeout or DEFAULT_TIMEOUT_S
    scenario = load_scenario(spec) if isinstance(spec, str) else spec
    target = db if isinstance(db, Target) else resolve(db)
    variant = scenario.variants[0]
    results: list[RunResult] = []

    def show(result: RunResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    limit = check(*planned(scenario, permutation), limit)  # before anything is played
    todo = [variant.entries(permutation, free_order=True)] if permutation is not None \
        else list(scenario.driver.listed)
    if not todo:
        from ..explorer import explore

        explore(scenario, None, isolation, target, timeout=timeout, on_result=show,
                serial_check=serial_check, limit=limit)
        return results
    todo = todo[:limit]
    stage = Stage(target, list(variant.sessions), isolation, timeout=timeout,
                  driver=scenario.driver, reusable=len(todo) > 1 or serial_check)
    try:
        for entries in todo:
            show(Run(scenario, isolation=isolation, stage=stage, timeout=timeout,
                     serial_check=serial_check).play(entries))
    finally:
        stage.close()
    return results
