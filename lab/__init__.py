"""Race Lab: watch concurrent users race on a residency schedule, one step at a time.

    from lab import Run, scenarios
    run = Run(scenarios.get("explicit-locking"))
    run.step("a_lock"); run.step("b_lock")   # B: <waiting for A ...>
    result = run.finish()
"""

from . import matrix, scenarios
from .explorer import explore
from .runner import Run, RunResult

__all__ = ["Run", "RunResult", "explore", "matrix", "scenarios"]
