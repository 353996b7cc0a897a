"""Same scenario + permutation = byte-identical trace, run after run."""

from __future__ import annotations

import pytest

from lab.db import resolve
from lab.runner import DEFAULT_TIMEOUT_S, Run
from lab.runner.scenario import normalize_isolation
from lab.runner.stage import Stage
from lab.scenarios import SCENARIOS

FOUNDATION = ("concurrent-edit", "explicit-locking")
CASES = [(s.name, v.name, level) for s in SCENARIOS.values() for v in s.variants
         for level in v.isolations]


@pytest.mark.parametrize(("name", "case", "isolation"), CASES)
def test_repeated_runs_give_identical_trace_text(backend, name, case, isolation):
    """A few runs on fresh databases, as `python -m lab run` plays them, and the rest on one
    reused stage whose data is reset between runs, as the explorer plays them: every trace
    the same. (A run on a fresh database takes about 1.7 times as long.)"""
    runs, fresh = (50, 5) if name in FOUNDATION else (10, 3)
    scenario = SCENARIOS[name]
    texts = {Run(scenario, case, isolation=isolation, db=backend,
                 serial_check=False).play().text() for _ in range(fresh)}
    stage = Stage(resolve(backend), list(scenario.variant(case).sessions),
                  normalize_isolation(isolation), timeout=DEFAULT_TIMEOUT_S, reusable=True)
    try:
        texts |= {Run(scenario, case, isolation=isolation, stage=stage,
                      serial_check=False).play().text() for _ in range(runs - fresh)}
    finally:
        stage.close()
    assert len(texts) == 1, "traces differ:\n" + "\n=====\n".join(sorted(texts))


@pytest.mark.parametrize(("name", "case", "isolation"), CASES)
def test_repeated_serial_checks_give_identical_lines(backend, name, case, isolation):
    """The serial check replays each order on the run's own database: its lines repeat
    exactly too (fewer runs: each one replays up to 24 orders)."""
    lines = {str(Run(SCENARIOS[name], case, isolation=isolation, db=backend).play().serial)
             for _ in range(3)}
    assert len(lines) == 1, "serial checks differ:\n" + "\n=====\n".join(sorted(lines))
