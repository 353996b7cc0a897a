"""Race Lab: watch concurrent users race on a residency schedule, one step at a time.

    from lab import Run, timeline
    run = Run("explicit-locking", db="sqlite")
    run.step("a_lock"); run.step("b_lock")   # B: <waiting for A ...>
    result = run.finish()
    timeline(result)

`explore("on-call-write-skew", case="check-then-act", isolation="serializable")` plays
every feasible interleaving; `scenarios.SCENARIOS` is the catalog; `exercises.check` and
`exercises.answer` grade the exercises the notebooks end with.
"""

from . import exercises, matrix, scenarios
from .explorer import explore
from .plot import timeline
from .runner import Outcome, Run, RunResult

__all__ = ["Outcome", "Run", "RunResult", "exercises", "explore", "matrix", "scenarios",
           "timeline"]
