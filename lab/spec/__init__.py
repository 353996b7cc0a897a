"""Spec files in PostgreSQL's isolationtester format: parse, run, print.

The runner imports this package's psql table layout, so the runner's own names are
imported where they are used, not at the top.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..db import Target
    from ..runner import RunResult, Scenario


def load_scenario(path: str | os.PathLike) -> Scenario:
    """A spec file as a scenario the runner, explorer and plot take like any other."""
    from .parser import load
    from .scenario import to_scenario

    return to_scenario(load(path), os.fspath(path))


def run_spec(spec: Scenario | str, *, db: Target | str | None = None,
             isolation: str = "read committed", timeout: float | None = None,
             permutation: str | None = None, serial_check: bool = False,
             on_result: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Play a spec as isolationtester would: `permutation`, else the file's permutation
    lines, else every feasible order (in isolationtester's order). One stage for all.
    `serial_check`: check each run against the serial orders (`RunResult.serial`)."""
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

    todo = [variant.entries(permutation, free_order=True)] if permutation is not None \
        else list(scenario.driver.listed)
    if not todo:
        from ..explorer import explore

        explore(scenario, None, isolation, target, timeout=timeout, on_result=show,
                serial_check=serial_check)
        return results
    stage = Stage(target, list(variant.sessions), isolation, timeout=timeout,
                  driver=scenario.driver, reusable=len(todo) > 1 or serial_check)
    try:
        for entries in todo:
            show(Run(scenario, isolation=isolation, stage=stage, timeout=timeout,
                     serial_check=serial_check).play(entries))
    finally:
        stage.close()
    return results
