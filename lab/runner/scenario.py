"""How a race is written down: setup, sessions of named steps, a permutation, an invariant.

It mirrors PostgreSQL's isolation spec files. A step is SQL text or a callable that gets
its session's SQLAlchemy ``Session`` (``session.connection()`` gives the Connection), and
a note that says, Hermitage style, what it expects: "B: blocks until A commits".
"""

from __future__ import annotations

import re
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



@dataclass(frozen=True)
class RawSQL:
    """A spec file's step: SQL sent as psql sends it, in autocommit, BEGIN and COMMIT included."""

    text: str


Action = str | RawSQL | Callable[[Session], Any]


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
    # spec files: SQL each session runs before its first step and after the run; not traced
    session_setup: Mapping[str, Action] = field(default_factory=dict)
    session_teardown: Mapping[str, Action] = field(default_factory=dict)
    # spec files: as in isolationtester, a permutation may run a session's steps in any
    # order, and a step more than once
    free_order: bool = False
    listed: tuple[str, ...] = ()  # spec files: every permutation line (`permutation`: the 1st)

    def steps(self) -> dict[str, Step]:
        found: dict[str, Step] = {}
        for session, steps in self.sessions.items():
            for st in steps:
                if st.name in found:
                    raise ValueError(f"step name {st.name!r} is used twice in {self.name!r}")
                found[st.name] = Step(st.name, st.action, st.note, session, st.sqlite_note)
        return found

    def parse_permutation(self, text: str | None = None) -> list[str]:
        """The permutation's entries, checked: `name`, or with isolationtester's blocker
        markers `name(*)` / `name(other, ...)`."""
        entries = split_permutation(text if text is not None else self.permutation)
        steps = self.steps()
        for name, markers in entries:
            if name not in steps:
                raise PermutationError(
                    f"unknown step {name!r} in permutation; steps are: {' '.join(steps)}")
            for m in markers:
                if m != "*" and m not in steps:
                    raise PermutationError(f"unknown step {m!r} in the marker of {name!r}")
                if m != "*" and steps[m].session == steps[name].session:
                    raise PermutationError(f"step {name!r} cannot be blocked by {m!r}:"
                                           " both are steps of session " + steps[m].session)
        names = [n for n, _ in entries]
        if not self.free_order:
            self._check_order(names, steps)
        return [format_entry(n, m) for n, m in entries]

    def _check_order(self, names: list[str], steps: dict[str, Step]) -> None:
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


_ENTRY = re.compile(r'\s*("(?:[^"]|"")+"|[^\s,()"]+)(?:\s*\(([^()]*)\))?\s*,?')


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def split_permutation(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """'a b(*) c(a, b)' -> [('a', ()), ('b', ('*',)), ('c', ('a', 'b'))]."""
    entries, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _ENTRY.match(text, pos)
        if m is None or m.end() == pos:
            raise PermutationError(f"cannot read the permutation at {text[pos:pos + 20]!r}")
        markers = tuple(_unquote(x.strip()) for x in (m.group(2) or "").split(",") if x.strip())
        if m.group(2) is not None and not markers:
            raise PermutationError(f"empty blocker marker after {m.group(1)!r}")
        entries.append((_unquote(m.group(1)), markers))
        pos = m.end()
    return entries


def format_entry(name: str, markers: tuple[str, ...] = ()) -> str:
    def q(n: str) -> str:
        return n if re.fullmatch(r"[^\s,()\"]+", n) else '"' + n.replace('"', '""') + '"'
    return q(name) + (f"({', '.join(q(m) for m in markers)})" if markers else "")


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
    source: str = ""  # spec files: the path, which replay lines name instead of a case
    teardown: Callable[[Session], None] | None = None  # spec files: after the final state
    raw_sql: bool = False  # spec files: sessions run SQL text in autocommit, as psql does

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
