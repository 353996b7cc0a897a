"""How a race is written down: setup, sessions of named steps, a permutation, an invariant.

It mirrors PostgreSQL's isolation spec files. A step is SQL text, ``COMMIT``/``ROLLBACK``,
or a callable that gets its session's SQLAlchemy ``Session`` (``session.connection()``
gives the Connection), and a note that says, Hermitage style, what it expects:
"B: blocks until A commits".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..errors import UsageError
from .driver import ORM, SessionDriver
from .schedule import Entry, Schedule

if TYPE_CHECKING:
    from ..exercises.kinds import Exercise
    from .outcome import Verdict
    from .result import RunResult

ISOLATION_LEVELS = ("read committed", "repeatable read", "serializable")

Action = str | Callable[[Session], Any] | Any  # SQL text, COMMIT/ROLLBACK, a callable; a
# driver may define its own (spec files bring theirs)


@dataclass(frozen=True)
class Step:
    name: str
    action: Action
    note: str = ""
    session: str = ""
    sqlite_note: str = ""  # where SQLite's whole-database lock makes the step act otherwise
    # what of the step's return value the serial check compares, when not all of it is
    # data: leave out a generated id, a clock value, a commit number (see lab.runner.serial)
    serial_key: Callable[[Any], Any] | None = None

    def note_for(self, backend_kind: str) -> str:
        return self.sqlite_note if backend_kind == "sqlite" and self.sqlite_note else self.note


def step(name: str, action: Action, note: str = "", *, sqlite: str = "",
         serial_key: Callable[[Any], Any] | None = None) -> Step:
    return Step(name, action, note, sqlite_note=sqlite, serial_key=serial_key)


@dataclass(frozen=True)
class Variant:
    """One way of playing the race (say, the naive save or the locked one)."""

    name: str
    summary: str
    sessions: Mapping[str, Sequence[Step]]
    permutation: str | tuple[Entry, ...]  # the default order
    invariant: Callable[[RunResult], Verdict]
    isolations: tuple[str, ...] = ("read committed",)
    # groups of sessions that run the same steps on the same rows (three queue workers):
    # renaming them within a group changes no outcome, so the explorer plays one ordering
    # of each renaming class and counts it for all (lab.explorer, "interchangeable")
    interchangeable: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        for group in self.interchangeable:
            lengths = {len(self.sessions.get(s, ())) for s in group}
            if len(group) < 2 or not set(group) <= set(self.sessions) or len(lengths) > 1:
                raise ValueError(f"case {self.name!r}: interchangeable {group} must name two"
                                 " or more of its sessions, with as many steps each")

    def steps(self) -> dict[str, Step]:
        """Every step by name, each knowing its session."""
        return {st.name: replace(st, session=session)
                for session, steps in self.sessions.items() for st in steps}

    def schedule(self, *, free_order: bool = False) -> Schedule:
        return Schedule({s: [st.name for st in steps] for s, steps in self.sessions.items()},
                        free_order=free_order)

    def entries(self, permutation: str | Sequence[Entry] | None = None, *,
                free_order: bool = False) -> tuple[Entry, ...]:
        """A permutation (default: the variant's own), read and checked."""
        return self.schedule(free_order=free_order).entries(
            self.permutation if permutation is None else permutation)


@dataclass(frozen=True)
class MatrixRow:
    """A row this scenario contributes to the anomaly matrix."""

    label: str  # the anomaly, in Hermitage's words where it has one
    case: str
    fix: bool = False  # a fix's row: does it hold at this level?
    # an application bug no isolation level fixes: the invariant judges what the
    # application does after an error, which the serial check (rolled back) cannot see
    app: bool = False


@dataclass(frozen=True)
class Scenario:
    """One race: its setup, its cases, the final state its invariant reads, and the
    anomaly-matrix rows and exercise it declares. A file in `lab/scenarios/` holds one."""

    name: str
    title: str
    summary: str
    frame: str
    setup: Callable[[Session], None] | None  # on top of the seeded schedule; None: as seeded
    # SQL whose rows are the final state the verdict reads; several as {"label": SQL}
    final_state: str | Mapping[str, str]
    variants: tuple[Variant, ...]
    driver: SessionDriver = ORM  # how sessions run steps: ORM (Python) or spec-file SQL
    # the anomaly matrix: this scenario's rows (every catalog race has one), or, for a spec
    # file or a generated workload, why it has none
    matrix: tuple[MatrixRow, ...] = ()
    not_in_matrix: str = ""
    # the exercise its notebook ends with: a fix to write, or a prediction to make
    exercise: Exercise | None = None
    # what `scenarios.find` takes to load it again in another process (a spec file's
    # path); a catalog scenario is found by its name
    source: str = ""

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
