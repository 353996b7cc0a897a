"""Same scenario + permutation = byte-identical trace, run after run."""

from __future__ import annotations

import pytest

from lab.runner import Run
from lab.scenarios import SCENARIOS

FOUNDATION = ("concurrent-edit", "explicit-locking")
CASES = [(s.name, v.name, level) for s in SCENARIOS.values() for v in s.variants
         for level in v.isolations]


@pytest.mark.parametrize(("name", "case", "isolation"), CASES)
def test_repeated_runs_give_identical_trace_text(backend, name, case, isolation):
    runs = 50 if name in FOUNDATION else 10
    texts = {Run(SCENARIOS[name], case, isolation=isolation, db=backend,
                 serial_check=False).play().text() for _ in range(runs)}
    assert len(texts) == 1, "traces differ:\n" + "\n=====\n".join(sorted(texts))


@pytest.mark.parametrize(("name", "case", "isolation"), CASES)
def test_repeated_serial_checks_give_identical_lines(backend, name, case, isolation):
    """The serial check replays each order on the run's own database: its lines repeat
    exactly too (fewer runs: each one replays up to 24 orders)."""
    lines = {str(Run(SCENARIOS[name], case, isolation=isolation, db=backend).play().serial)
             for _ in range(3)}
    assert len(lines) == 1, "serial checks differ:\n" + "\n=====\n".join(sorted(lines))
