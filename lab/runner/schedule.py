"""The schedule: which step may run next, and when a finished step may be reported.

It knows no database. It holds each session's steps in program order, checks a
permutation once (as isolationtester's ``check_testspec`` does, for Python scenarios and
spec files alike), and tracks what the conductor has launched and what still waits.
isolationtester's blocker markers live here too: ``name(*)`` is reported waiting until a
later step is launched, ``name(other)`` is reported complete only once ``other`` is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import PermutationError

ANY_LATER_STEP = "*"


@dataclass(frozen=True)
class Entry:
    """One permutation entry: a step name and its blocker markers, as written."""

    name: str
    blockers: tuple[str, ...] = ()

    def __str__(self) -> str:
        return _quote(self.name) + (
            f"({', '.join(_quote(m) for m in self.blockers)})" if self.blockers else "")


@dataclass(frozen=True)
class Launch:
    """A step the conductor has started: the entry, its session, and its place in the run."""

    entry: Entry
    session: str
    order: int  # how many steps had been launched, this one included


_ENTRY = re.compile(r'\s*("(?:[^"]|"")+"|[^\s,()"]+)(?:\s*\(([^()]*)\))?\s*,?')


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[^\s,()\"]+", name) else '"' + name.replace('"', '""') + '"'


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def parse_entries(text: str) -> tuple[Entry, ...]:
    """'a b(*) c(a, b)' -> entries; syntax only (`Schedule.check` judges the meaning)."""
    entries, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _ENTRY.match(text, pos)
        if m is None or m.end() == pos:
            raise PermutationError(f"cannot read the permutation at {text[pos:pos + 20]!r}")
        markers = tuple(_unquote(x.strip()) for x in (m.group(2) or "").split(",") if x.strip())
        if m.group(2) is not None and not markers:
            raise PermutationError(f"empty blocker marker after {m.group(1)!r}")
        entries.append(Entry(_unquote(m.group(1)), markers))
        pos = m.end()
    return tuple(entries)


class Schedule:
    """Program order, the permutation rules, and the run's progress through them.

    `free_order`: a spec file's permutation may run a session's steps in any order and
    repeat them (isolationtester checks neither); a Python scenario's may not.
    """

    def __init__(self, sessions: Mapping[str, Sequence[str]], *, free_order: bool = False):
        self.sessions = {s: tuple(names) for s, names in sessions.items()}
        self.free_order = free_order
        self.session_of: dict[str, str] = {}
        for session, names in self.sessions.items():
            for name in names:
                if name in self.session_of:
                    raise PermutationError(f"step name {name!r} is used twice")
                self.session_of[name] = session
        self.played: list[Entry] = []
        self.waiting: dict[str, Launch] = {}  # session -> its unreported step, launch order
        self._next = dict.fromkeys(self.sessions, 0)

    # -- checking ----------------------------------------------------------------------
    def entries(self, permutation: str | Iterable[Entry]) -> tuple[Entry, ...]:
        """A whole permutation, read (if text) and checked."""
        entries = parse_entries(permutation) if isinstance(permutation, str) \
            else tuple(permutation)
        if not entries:
            raise PermutationError("the permutation is empty: name at least one step")
        self.check(entries)
        return entries

    def check(self, entries: Sequence[Entry], *, whole: bool = True) -> None:
        """Unknown steps, bad markers and (unless free order) broken program order.

        `whole`: `entries` is a complete permutation, so a marker must name a step it runs.
        Each error names the offending step and marker (`PermutationError.step`, `.marker`).
        """
        listed = {e.name for e in entries}
        for e in entries:
            if e.name not in self.session_of:
                raise PermutationError(f"permutation names unknown step {e.name!r}; steps"
                                       f" are: {' '.join(self.session_of)}", step=e.name)
            for m in e.blockers:
                if m == ANY_LATER_STEP:
                    continue
                if m not in self.session_of:
                    raise PermutationError(f"marker of step {e.name!r} names unknown step"
                                           f" {m!r}", step=e.name, marker=m)
                if whole and m not in listed:
                    raise PermutationError(f"marker of step {e.name!r} names step {m!r},"
                                           " which this permutation does not run",
                                           step=e.name, marker=m)
                if self.session_of[m] == self.session_of[e.name]:
                    raise PermutationError(
                        f"step {e.name!r} cannot be blocked by {m!r}: both are in session"
                        f" {self.session_of[m]!r}", step=e.name, marker=m)
        if whole and not self.free_order:
            self._check_order([e.name for e in entries])

    def _check_order(self, names: list[str]) -> None:
        twice = [n for i, n in enumerate(names) if n in names[:i]]
        if twice:
            raise PermutationError(f"step {twice[0]!r} appears twice in the permutation",
                                   step=twice[0])
        for session, program in self.sessions.items():
            order = [n for n in names if self.session_of[n] == session]
            if order != list(program[: len(order)]):
                raise PermutationError(
                    f"permutation runs session {session}'s steps as {' '.join(order)};"
                    f" they must keep their order: {' '.join(program)}", step=order[0])

    # -- progress ----------------------------------------------------------------------
    def admissible(self, entry: Entry) -> str:
        """The session of `entry` if it may run now (its session's next step), else raise."""
        self.check([entry], whole=False)
        session = self.session_of[entry.name]
        if not self.free_order:
            program, index = self.sessions[session], self._next[session]
            if index >= len(program) or program[index] != entry.name:
                want = program[index] if index < len(program) else "nothing (it is done)"
                raise PermutationError(f"step {entry.name!r} is out of order: session"
                                       f" {session} plays {want} next", step=entry.name)
        return session

    def admit(self, entry: Entry) -> Launch:
        """Record `entry` as launched; `admissible` must have said yes."""
        session = self.session_of[entry.name]
        self._next[session] += 1
        self.played.append(entry)
        return Launch(entry, session, len(self.played))

    def playable(self) -> list[str]:
        """The next step of each session that can move now: not done, not waiting.

        A blocked session cannot start a step before it is released, so these are the
        schedules that can really happen (the explorer's choices). Program order only.
        """
        return [steps[self._next[s]] for s, steps in self.sessions.items()
                if self._next[s] < len(steps) and s not in self.waiting]

    def wait(self, launch: Launch) -> None:
        """The launched step is seen blocked (or held back by its marker)."""
        self.waiting[launch.session] = launch

    def report(self, session: str) -> Launch:
        """The session's waiting step is reported complete."""
        return self.waiting.pop(session)

    def held_by(self, launch: Launch) -> tuple[str, ...]:
        """What a blocker marker still holds this step's completion report for.

        `(*)`: until a later step has been launched; `(other)`: while `other` is active,
        that is, launched and not yet reported complete.
        """
        markers = launch.entry.blockers
        if ANY_LATER_STEP in markers and len(self.played) <= launch.order:
            return ("marked (*)",)
        active = {w.entry.name: s for s, w in self.waiting.items() if w is not launch}
        return tuple(sorted({active[m] for m in markers if m in active}))

    def marker_names(self) -> set[str]:
        """Steps some waiting step's marker names: reporting one may free another."""
        return {m for w in self.waiting.values() for m in w.entry.blockers}
