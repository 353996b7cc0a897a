"""One vocabulary for how a run ended, shared by the trace, explorer, matrix and plot.

A run ends in one of six ways. Errors are classified once, where they happen (the
worker), into three kinds: a database error or a stale-save conflict *aborts* a
transaction; a business rule saying no ("you are the last one on call") is the invariant
at work, so it does not count as an abort.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import RunResult

DEADLOCK_CODE = "40P01"


class Outcome(StrEnum):
    FINE = "fine"
    WAITED = "blocked, then fine"
    ABORTED = "aborted"
    DEADLOCK = "deadlock"
    ANOMALY = "anomaly"
    STUCK = "stuck"  # the run could not finish within its bound (explorer only)

    @property
    def label(self) -> str:
        """How a verdict line names it."""
        return {"fine": "FINE", "blocked, then fine": "PREVENTED (by waiting)",
                "aborted": "PREVENTED (by abort)", "deadlock": "PREVENTED (by abort)",
                "anomaly": "ANOMALY", "stuck": "STUCK"}[self.value]


class ErrorKind(StrEnum):
    DATABASE = "database"  # a SQLSTATE or SQLITE_* error: the transaction is gone
    CONFLICT = "conflict"  # a stale save (409, StaleDataError): reload and retry
    RULE = "rule"  # a scheduling rule said no: the application's own refusal

    @property
    def aborts(self) -> bool:
        return self is not ErrorKind.RULE


@dataclass(frozen=True)
class StepError:
    code: str  # SQLSTATE, "SQLITE_BUSY", "StaleDataError", a DomainError code
    message: str
    kind: ErrorKind


@dataclass(frozen=True)
class Verdict:
    """The scenario invariant's judgement, in domain words."""

    outcome: Outcome
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome(self.outcome))

    @property
    def holds(self) -> bool:
        return self.outcome is not Outcome.ANOMALY

    def __str__(self) -> str:
        return f"{self.outcome.label}: {self.text}"


def failures(result: RunResult) -> str:
    return ", ".join(f"{step} failed with {code}" for step, code in result.errors().items())


def judged(result: RunResult, anomaly: str | None | bool, state: str) -> Verdict:
    """The verdict most invariants share. `anomaly`: what broke (falsy if the invariant
    held); `state`: what the rows say. Errors are named either way."""
    if anomaly:
        return Verdict(Outcome.ANOMALY, str(anomaly))
    text = f"{failures(result)}; {state}" if result.errors() else state
    if result.aborts():
        return Verdict(Outcome.ABORTED, text)
    return Verdict(Outcome.WAITED if result.waits() else Outcome.FINE, text)


def classify(result: RunResult) -> tuple[Outcome, str]:
    """How a finished run ended, with its detail (the anomaly, or the aborting codes)."""
    if result.verdict is not None and result.verdict.outcome is Outcome.ANOMALY:
        return Outcome.ANOMALY, result.verdict.text
    codes = sorted(set(result.aborts().values()))
    if DEADLOCK_CODE in codes:
        return Outcome.DEADLOCK, ", ".join(codes)
    if codes:
        return Outcome.ABORTED, ", ".join(codes)
    return (Outcome.WAITED if result.waits() else Outcome.FINE), ""
