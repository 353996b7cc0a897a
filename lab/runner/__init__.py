"""The runner: scenarios, the conductor that plays them, and the trace it records."""

from .conductor import DEFAULT_TIMEOUT_S, Run
from .result import RunResult
from .scenario import COMMIT, ISOLATION_LEVELS, ROLLBACK, Scenario, Step, Variant, step
from .trace import Event, Verdict

__all__ = ["COMMIT", "DEFAULT_TIMEOUT_S", "ISOLATION_LEVELS", "Event", "ROLLBACK", "Run", "RunResult",
           "Scenario", "Step", "Variant", "Verdict", "step"]
