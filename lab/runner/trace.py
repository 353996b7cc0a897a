"""The one trace model: what happened in a run, in the order the conductor fixed.

Events carry a logical sequence number; wall-clock times ride along for the optional
wall-clock plot but never appear in the text, so the same scenario and permutation render
byte-identical text on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal["launch", "wait", "complete", "skip", "error", "commit", "rollback", "lock"]


@dataclass(frozen=True)
class ResultSet:
    """One result of a spec step, values as the database's text (None for NULL)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]


@dataclass(frozen=True)
class Outcome:
    """What a finished step produced: a description of rows/rowcount, or an error."""

    text: str = ""
    rows: tuple[tuple[Any, ...], ...] | None = None
    rowcount: int | None = None
    code: str | None = None  # SQLSTATE, "SQLITE_BUSY", "StaleDataError", a DomainError code
    error: str | None = None
    ended_transaction: Literal["commit", "rollback"] | None = None
    skipped: bool = False
    results: tuple[ResultSet, ...] = ()  # spec steps: every result set, for psql tables


@dataclass(frozen=True)
class Event:
    seq: int
    kind: EventKind
    session: str
    step: str
    detail: str = ""
    blockers: tuple[str, ...] = ()
    code: str | None = None
    commit_no: int | None = None
    results: tuple[ResultSet, ...] = ()
    wall_ms: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Verdict:
    """The scenario invariant's judgement, in domain words."""

    outcome: Literal["anomaly", "prevented-by-waiting", "prevented-by-abort", "fine"]
    text: str

    @property
    def holds(self) -> bool:
        return self.outcome != "anomaly"

    def __str__(self) -> str:
        label = {"anomaly": "ANOMALY", "prevented-by-waiting": "PREVENTED (by waiting)",
                 "prevented-by-abort": "PREVENTED (by abort)", "fine": "FINE"}[self.outcome]
        return f"{label}: {self.text}"


def describe(value: Any) -> str:
    """A deterministic one-line description of what a step returned."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return " ".join(f"{k}={v!r}" for k, v in value.items())
    if isinstance(value, Iterable):
        items = [describe(v) if isinstance(v, Mapping) else repr(tuple(v)) for v in value]
        return f"{len(items)} row{'s' if len(items) != 1 else ''}: " + ", ".join(items)
    return repr(value)


def render_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return ["  (no rows)"]
    return ["  " + " ".join(f"{k}={v!r}" for k, v in row.items()) for row in rows]
