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


class PermutationError(UsageError):
    """A permutation that names unknown steps, repeats one, or breaks a session's order."""


class DomainError(Exception):
    """A scheduling rule said no (a conflict, a taken shift). Steps record it like a database error.

    `code` plays the role a SQLSTATE plays for database errors, so a trace can name it.
    """

    code = "DomainError"
