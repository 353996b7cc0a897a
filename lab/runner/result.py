"""A finished run: its events, final rows and verdict, and the questions tests ask of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..spec.psql import aligned_table
from .outcome import Outcome, StepError, Verdict
from .schedule import Entry
from .serial import SerialCheck
from .trace import Event, Notice, ResultSet, render_rows


@dataclass(frozen=True)
class Replay:
    """How to play this exact run again: a command line, and one line of Python."""

    cli: str
    python: str

    def __str__(self) -> str:
        return self.cli


@dataclass
class RunResult:
    scenario: str
    case: str
    isolation: str
    backend: str
    permutation: tuple[Entry, ...]
    events: tuple[Event, ...]
    tables: dict[str, tuple[dict[str, Any], ...]]
    notes: tuple[str, ...]
    replay: Replay
    sessions: tuple[str, ...]
    verdict: Verdict | None = None
    # spec files: what their setup and teardown SQL printed (the result sets returned last,
    # and the sessions' notices), in isolationtester's order
    setup_results: tuple[ResultSet | Notice, ...] = ()
    teardown_results: tuple[ResultSet | Notice, ...] = ()
    teardown_failed: tuple[tuple[str, StepError], ...] = ()  # (session, its error)
    queued: bool = False  # two sessions queued for one lock: PostgreSQL picked the winner
    victim_by_timing: bool = False  # a deadlock's victim was not the stagger's (a busy machine)
    serial: SerialCheck | None = None  # the serial-order check, when the run made it

    # -- questions ----------------------------------------------------------------------
    @property
    def final(self) -> tuple[dict[str, Any], ...]:
        """The rows of the scenario's (first) final-state query."""
        return next(iter(self.tables.values()), ())

    def waits(self) -> list[tuple[str, tuple[str, ...]]]:
        """(step, blockers) for every step that was seen waiting, in order."""
        return [(e.step, e.blockers) for e in self.events if e.kind == "wait"]

    def waited_for(self, step: str) -> tuple[str, ...]:
        return next((b for s, b in self.waits() if s == step), ())

    def commit_order(self) -> list[str]:
        return [e.session for e in self.events if e.kind == "commit"]

    def errors(self) -> dict[str, str]:
        return {e.step: e.code for e in self.events if e.kind == "error"}

    def aborts(self) -> dict[str, str]:
        """The errors that aborted a transaction (not a business rule saying no)."""
        return {e.step: e.code for e in self.events if e.kind == "error" and e.error.aborts}

    def error_of(self, step: str) -> str | None:
        return self.errors().get(step)

    def committed(self, session: str) -> bool:
        return session in self.commit_order()

    def outputs(self, step: str) -> list[str]:
        return [e.detail for e in self.events
                if e.step == step and e.kind == "complete" and not e.resumed]

    # -- text ---------------------------------------------------------------------------
    @property
    def title(self) -> str:
        return f"{self.scenario} / {self.case} / {self.isolation.upper()} / {self.backend}"

    def text(self) -> str:
        lines = [self.title, "permutation: " + " ".join(map(str, self.permutation)), ""]
        lines += render_events(self.events)
        lines += ["", f"verdict: {self.verdict}"]
        if self.serial is not None:
            lines += self.serial.lines()
        for name, rows in self.tables.items():
            lines.append("final state:" if name == "" else f"final state, {name}:")
            lines += render_rows(rows)
        lines += [f"teardown of session {name} failed: {error.code} {error.message}"
                  for name, error in self.teardown_failed]
        if self.notes:
            lines += ["notes:"] + [f"  - {n}" for n in self.notes]
        lines += [f"replay: {self.replay.cli}"]
        if self.verdict is not None and self.verdict.outcome is Outcome.ANOMALY:
            lines += [f"replay in Python: {self.replay.python}"]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:  # notebooks show the trace as plain text
        return self.text().rstrip("\n")


class Events(tuple):
    """The events one notebook cell produced; shown as trace lines."""

    def __repr__(self) -> str:
        return "\n".join(render_events(self)) or "(no events)"


def render_events(events: tuple[Event, ...] | list[Event]) -> list[str]:
    """isolationtester-style lines, with the step's Hermitage note after the session."""
    lines: list[str] = []
    for e in events:
        if e.kind == "launch":
            lines.append(f"step {e.step} [{e.session}]" + (f": {e.detail}" if e.detail else ""))
        elif e.kind == "wait":
            lines.append(f"  <waiting for {', '.join(e.blockers)} ...>")
        elif e.kind == "complete" and e.resumed:
            lines.append(f"step {e.step} [{e.session}]: <... completed>")
        elif e.kind == "error":
            lines.append(f"  ERROR {e.code}: {e.detail}")
        elif e.kind == "lock":
            lines.append(f"  lock: {e.lock}")
        elif e.kind == "end":
            lines.append(f"[{e.session}] {e.detail}")
        elif e.kind == "notice":
            lines += [f"  [{e.session}] {line}" for line in e.notice.lines()]
        elif e.kind == "notify":
            lines.append(f"  [{e.session}] {e.notification}")
        elif e.results:  # a spec step's result sets, as psql prints them
            lines += [f"    {t}".rstrip() for rs in e.results
                      for t in aligned_table(rs.columns, rs.rows)[:-1]]
        elif e.detail:
            lines.append(f"  -> {e.detail}")
    return lines
