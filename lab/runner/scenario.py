"""How a race is written down: setup, sessions of named steps, a permutation, an invariant.

It mirrors PostgreSQL's isolation spec files. A step is SQL text or a callable that gets
its session's SQLAlchemy ``Session`` (``session.connection()`` gives the Connection), and
a note that says, Hermitage style, what it expects: "B: blocks until A commits".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..errors import PermutationError, UsageError

if TYPE_CHECKING:
    from .result import RunResult
    from .trace import Verdict

COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"

ISOLATION_LEVELS = ("read committed", "repeatable read", "serializable")

Action = str | Callable[[Session], Any]


@dataclass(frozen=True)
class Step:
    name: str
    action: Action
    note: str = ""
    session: str = ""
    sqlite_note: str = ""  # where SQLite's whole-database lock makes the step act otherwise

    def note_for(self, backend_kind: str) -> str:
        return self.sqlite_note if backend_kind == "sqlite" and self.sqlite_note else self.note


def step(name: str, action: Action, note: str = "", *, sqlite: str = "") -> Step:
    return Step(name, action, note, sqlite_note=sqlite)


@dataclass(frozen=True)
class Variant:
    """One way of playing the race (say, the naive save or the locked one)."""

    name: str
    summary: str
    sessions: Mapping[str, Sequence[Step]]
    permutation: str
    invariant: Callable[[RunResult], Verdict]
    isolations: tuple[str, ...] = ("read committed",)

    def steps(self) -> dict[str, Step]:
        found: dict[str, Step] = {}
        for session, steps in self.sessions.items():
            for st in steps:
                if st.name in found:
                    raise ValueError(f"step name {st.name!r} is used twice in {self.name!r}")
                found[st.name] = Step(st.name, st.action, st.note, session, st.sqlite_note)
        return found

    def parse_permutation(self, text: str | None = None) -> list[str]:
        names = (text if text is not None else self.permutation).replace(",", " ").split()
        steps = self.steps()
        unknown = [n for n in names if n not in steps]
        if unknown:
            raise PermutationError(
                f"unknown step {unknown[0]!r} in permutation; steps are: {' '.join(steps)}")
        seen = [n for i, n in enumerate(names) if n in names[:i]]
        if seen:
            raise PermutationError(f"step {seen[0]!r} appears twice in the permutation")
        for session, session_steps in self.sessions.items():
            order = [n for n in names if steps[n].session == session]
            expected = [s.name for s in session_steps][: len(order)]
            if order != expected:
                raise PermutationError(
                    f"permutation runs session {session}'s steps as {' '.join(order)};"
                    f" they must keep their order: {' '.join(s.name for s in session_steps)}")
        return names


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    summary: str
    frame: str
    setup: Callable[[Session], None] | None  # on top of the seeded schedule; None: as seeded
    # SQL whose rows are the final state the verdict reads; several as {"label": SQL}
    final_state: str | Mapping[str, str]
    variants: tuple[Variant, ...]
    tags: tuple[str, ...] = field(default=())

    def variant(self, name: str | None) -> Variant:
        if name is None:
            return self.variants[0]
        for v in self.variants:
            if v.name == name:
                return v
        raise UsageError(f"scenario {self.name!r} has no case {name!r};"
                         f" cases: {', '.join(v.name for v in self.variants)}")


def normalize_isolation(level: str) -> str:
    """'REPEATABLE_READ', 'repeatable-read' -> 'repeatable read'; anything else is bad input."""
    norm = " ".join(level.lower().replace("-", " ").replace("_", " ").split())
    if norm not in ISOLATION_LEVELS:
        raise UsageError(f"unknown isolation level {level!r}; choose one of: "
                         + ", ".join(ISOLATION_LEVELS))
    return norm
