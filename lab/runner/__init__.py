"""The runner: scenarios, the schedule, the conductor that plays them, and the trace."""

from .conductor import DEFAULT_TIMEOUT_S, Run
from .driver import COMMIT, ROLLBACK, SessionContext, context
from .outcome import ErrorKind, Outcome, Verdict, classify, judged
from .result import Replay, RunResult
from .scenario import ISOLATION_LEVELS, MatrixRow, Scenario, Step, Variant, step
from .schedule import Entry, Schedule
from .trace import Event

__all__ = ["COMMIT", "DEFAULT_TIMEOUT_S", "ISOLATION_LEVELS", "Entry", "ErrorKind", "Event",
           "MatrixRow", "Outcome", "ROLLBACK", "Replay", "Run", "RunResult", "Scenario",
           "Schedule", "SessionContext", "Step", "Variant", "Verdict", "classify", "context",
           "judged", "step"]
