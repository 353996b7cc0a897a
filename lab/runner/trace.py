"""The one trace model: what happened in a run, in the order the conductor fixed.

Events carry a logical sequence number; wall-clock times ride along for the optional
wall-clock plot but never appear in the text, so the same scenario and permutation render
byte-identical text on every run. What an event means is in typed fields (`resumed`,
`lock`, `error`), never in its display text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..db.protocol import Lock
from .outcome import ErrorKind, StepError

# launch / wait / complete (resumed: after a wait) / skip (its transaction had failed) /
# error / commit / rollback (after_error: the error ended it) / lock (rows it locked) /
# end (a transaction left open, rolled back when the run ended; no step) /
# notice (a NOTICE, WARNING... the server sent the step's session) / notify (a NOTIFY the
# session received, reported when its step finished)
EventKind = Literal["launch", "wait", "complete", "skip", "error", "commit", "rollback",
                    "lock", "end", "notice", "notify"]
Ended = Literal["commit", "rollback"]


@dataclass(frozen=True)
class ResultSet:
    """One result of a spec step, values as the database's text (None for NULL)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]


@dataclass(frozen=True)
class Notice:
    """A message the server sent a session beside its results: NOTICE, WARNING, INFO...

    Where isolationtester prints it: a notice read before its step's first result was
    ready (`before_first_result`) goes ahead of the step's line, a later one after the
    step's first `tables_before` result sets.
    """

    session: str  # who received it
    severity: str  # as the server names it: NOTICE, WARNING, INFO, DEBUG, LOG
    message: str
    detail: str | None = None
    hint: str | None = None
    before_first_result: bool = True
    tables_before: int = 0

    def lines(self) -> list[str]:
        """The notice as libpq formats it (default verbosity): what isolationtester prints."""
        return ([f"{self.severity}:  {self.message}"]
                + [f"{label}:  {text}" for label, text in (("DETAIL", self.detail),
                                                            ("HINT", self.hint)) if text])


@dataclass(frozen=True)
class Notification:
    """A NOTIFY the session received on a channel it LISTENs to."""

    session: str  # who received it
    channel: str
    payload: str
    sender_pid: int
    sender: str | None = None  # the session of this run that sent it, if one did

    def __str__(self) -> str:
        """isolationtester's words, after the receiving session's name."""
        return (f'NOTIFY "{self.channel}" with payload "{self.payload}" from'
                f" {self.sender or f'PID {self.sender_pid}'}")


@dataclass(frozen=True)
class StepResult:
    """What a finished step produced: a description of rows/rowcount, or an error."""

    text: str = ""
    rows: tuple[tuple[Any, ...], ...] | None = None
    rowcount: int | None = None
    error: StepError | None = None
    ended: Ended | None = None  # the transaction this step ended, and how
    skipped: bool = False  # it ran in a transaction that had already failed: it did nothing
    results: tuple[ResultSet, ...] = ()  # spec steps: every result set, for psql tables
    autocommit: bool = False  # a spec statement run outside BEGIN: a transaction of its own
    key: tuple[Any] | None = None  # what the serial check compares instead (Step.serial_key)
    commits_inside: bool = False  # a Python step whose own code committed (say, a service)
    # the last statement's result, if it returned rows: all that PQexec gives back, so all
    # isolationtester prints of setup and teardown SQL
    last: ResultSet | None = None


@dataclass(frozen=True)
class Played:
    """A step that finished, with its result: what the serial check replays and compares."""

    session: str
    step: str
    result: StepResult
    at: int  # how many events the run had when it finished: orders commits


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
    resumed: bool = False  # a completion reported after the step was seen waiting
    lock: Lock | None = None
    error: ErrorKind | None = None
    after_error: bool = False  # a rollback the error itself caused
    notice: Notice | None = None
    notification: Notification | None = None


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
