"""Errors the lab reports to people, each as one clear line.

`UsageError` is bad input (exit code 2); `RunFailed` is a run that could not finish,
for example a step stuck past its bound (exit code 1). Neither prints a traceback.
"""

from __future__ import annotations


class LabError(Exception):
    exit_code = 1


class UsageError(LabError):
    """Unknown scenario, malformed URL, unreachable server, bad isolation level..."""

    exit_code = 2


class RunFailed(LabError):
    """The run could not complete; the message names the step, its session and its blocker."""

    exit_code = 1


class StepTimeout(RunFailed):
    """A step (or its session's release) did not come within the run's bound: a stuck run."""


class PermutationError(UsageError):
    """A permutation that names unknown steps, repeats one, or breaks a session's order.

    `step`, `marker`: what the complaint is about, so a spec file's error can point at
    its line.
    """

    def __init__(self, message: str, *, step: str | None = None, marker: str | None = None):
        super().__init__(message)
        self.step, self.marker = step, marker


class DomainError(Exception):
    """A scheduling rule said no (a conflict, a taken shift). Steps record it like a database error.

    `code` plays the role a SQLSTATE plays for database errors, so a trace can name it.
    """

    code = "DomainError"


class ConflictError(DomainError):
    """A stale save: the row changed since the user loaded it. An API answers 409."""

    code = "409"
    status = 409

    def __init__(self, what: str, loaded_version: int, current_version: int | None):
        self.loaded_version, self.current_version = loaded_version, current_version
        now = "it was deleted" if current_version is None else f"now version {current_version}"
        super().__init__(f"Conflict: {what} changed since you loaded version "
                         f"{loaded_version} ({now}); reload and retry")


class SwapPendingError(DomainError):
    code = "swap-pending"


class DoubleBookingError(DomainError):
    code = "double-booked"


class TaskCancelled(DomainError):
    code = "task-cancelled"
