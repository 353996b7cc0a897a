"""Read isolationtester spec files, so a spec that PostgreSQL's isolationtester runs parses here.

The rules follow src/test/isolation/specscanner.l, specparse.y and check_testspec() in
isolationtester.c (PostgreSQL 14 and later). The grammar, whose parts come in this order:

    spec        := setup* [teardown] session+ permutation*
    session     := "session" NAME [setup] step+ [teardown]
    setup       := "setup" SQL          teardown := "teardown" SQL
    step        := "step" NAME SQL
    permutation := "permutation" entry+          (it may run over several lines)
    entry       := NAME [ "(" marker ("," marker)* ")" ]
    marker      := "*" | NAME
    invariant   := "invariant" NAME SQL          (lab extension: anywhere between the parts)

Scanner rules:
- NAME is plain ([A-Za-z_ or non-ASCII] then also digits and $) or double-quoted, with ""
  for a quote; a quoted name cannot span lines. No case folding. The keywords (setup,
  teardown, session, step, permutation, notices, and our invariant) need quotes to be names.
- SQL runs from "{" to the first "}": braces do not nest, and no "}" can appear in SQL, not
  even in a string literal. Spaces, tabs, CR and FF right after "{" and right before "}" are
  dropped; newlines are kept, so a block written over several lines starts and ends with a
  newline (isolationtester prints "step s1: " and then the SQL on the next lines).
- "#" starts a comment to the end of the line, except inside SQL and quoted names.

Permutation rules, as check_testspec() has them: a permutation may list a session's steps in
any order, repeat steps and leave steps out; isolationtester checks none of that (it only
warns about a step no permutation uses, which we do not). A marker names a step that the same
permutation runs, before or after, and never one of the marked step's own session.
isolationtester's "NAME notices N" marker is refused. Checks of ours that isolationtester
lacks: duplicate session names, duplicate invariant labels, invariants without SQL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lab.bounds import MAX_SPEC_BYTES, MAX_STEPS
from lab.errors import PermutationError, UsageError
from lab.runner.schedule import Entry as PermutationStep
from lab.runner.schedule import Schedule


@dataclass(frozen=True)
class SpecStep:
    name: str
    sql: str
    session: str
    line: int


@dataclass(frozen=True)
class SpecSession:
    name: str
    steps: tuple[SpecStep, ...]
    setup: str | None = None
    teardown: str | None = None


@dataclass(frozen=True)
class Invariant:
    """SQL run after a permutation; each row it returns is a violation named by `label`."""

    label: str
    sql: str


@dataclass(frozen=True)
class Spec:
    name: str  # file stem, e.g. "lost-update" for lost-update.spec
    setup: tuple[str, ...]
    teardown: str | None
    sessions: tuple[SpecSession, ...]
    permutations: tuple[tuple[PermutationStep, ...], ...]
    invariants: tuple[Invariant, ...]


class SpecError(UsageError):
    """A spec that cannot be used; the message is 'PATH:LINE: what is wrong'."""


KEYWORDS = frozenset({"setup", "teardown", "session", "step", "permutation", "notices",
                      "invariant"})
_SPACE = " \t\r\f"  # specscanner.l's {space}: no newline
_HINTS = {
    "setup": "global setup comes before the teardown and the sessions,"
             " a session's setup before its steps",
    "teardown": "the one global teardown comes before the sessions,"
                " a session's teardown after its steps",
    "session": "sessions come before the permutations",
    "permutation": "a permutation needs a session before it",
    "step": "a step belongs in a session, before the session's teardown",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # "kw", "name", "sql", "punct", "number" or "eof"
    value: str
    line: int

    def describe(self) -> str:
        return {"eof": "the end of the file", "sql": "a { SQL } block",
                "name": f"name {self.value!r}", "number": f"number {self.value}"
                }.get(self.kind, f"'{self.value}'")


def _ident_char(c: str, first: bool) -> bool:
    return not c.isascii() or c.isalpha() or c == "_" or (not first and (c.isdigit() or c == "$"))


def _tokenize(text: str, fail: Callable[[int, str], SpecError]) -> Iterator[_Token]:
    """Yield tokens the way specscanner.l does, lazily, so a syntax error before a bad
    character is the one reported, as with isolationtester. Only a newline advances the line.
    """
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line, i = line + 1, i + 1
        elif c in _SPACE:
            i += 1
        elif c == "#":
            while i < n and text[i] not in "\r\n":
                i += 1
        elif c == '"':
            j, chars = i + 1, []
            while True:
                if j >= n:
                    raise fail(line, "unterminated quoted name")
                if text[j] == "\n":
                    raise fail(line, "quoted name runs past the end of the line")
                if text.startswith('""', j):
                    chars.append('"')
                    j += 2
                elif text[j] == '"':
                    break
                else:
                    chars.append(text[j])
                    j += 1
            yield _Token("name", "".join(chars), line)
            i = j + 1
        elif c == "{":
            close = text.find("}", i)
            if close < 0:
                raise fail(line, "'{' is never closed: no '}' before the end of the file")
            yield _Token("sql", text[i + 1:close].lstrip(_SPACE).rstrip(_SPACE), line)
            line += text.count("\n", i, close)
            i = close + 1
        elif c in "(),*":
            yield _Token("punct", c, line)
            i += 1
        elif c in "0123456789":
            j = i
            while j < n and text[j] in "0123456789":
                j += 1
            yield _Token("number", text[i:j], line)
            i = j
        elif _ident_char(c, first=True):
            j = i + 1
            while j < n and _ident_char(text[j], first=False):
                j += 1
            word = text[i:j]
            yield _Token("kw" if word in KEYWORDS else "name", word, line)
            i = j
        else:
            raise fail(line, f"unexpected character {c!r}")
    yield _Token("eof", "", line)


class _Parser:
    """Recursive descent over the token stream; the first problem found raises SpecError."""

    def __init__(self, text: str, path: str):
        self.path = path
        self.tokens = _tokenize(text, self.fail)
        self.lookahead = next(self.tokens)
        self.steps: dict[str, SpecStep] = {}

    def fail(self, line: int, message: str) -> SpecError:
        return SpecError(f"{self.path}:{line}: {message}")

    def peek(self) -> _Token:
        return self.lookahead

    def take(self) -> _Token:
        tok = self.lookahead
        if tok.kind != "eof":
            self.lookahead = next(self.tokens)
        return tok

    def at(self, kind: str, value: str) -> bool:
        tok = self.peek()
        return tok.kind == kind and tok.value == value

    def name(self, what: str) -> _Token:
        tok = self.take()
        if tok.kind != "name":
            quote = " (quote a keyword to use it as a name)" if tok.kind == "kw" else ""
            raise self.fail(tok.line, f"expected {what}, found {tok.describe()}{quote}")
        return tok

    def sql(self, owner: str) -> str:
        tok = self.take()
        if tok.kind != "sql":
            raise self.fail(tok.line, f"expected '{{' to open the SQL of {owner},"
                                      f" found {tok.describe()}")
        return tok.value

    def optional_sql(self, keyword: str, owner: str) -> str | None:
        if not self.at("kw", keyword):
            return None
        self.take()
        return self.sql(owner)

    def spec(self, name: str) -> Spec:
        setup: list[str] = []
        teardown: str | None = None
        sessions: dict[str, tuple[int, SpecSession]] = {}
        permutations: list[tuple[PermutationStep, ...]] = []
        invariants: dict[str, Invariant] = {}
        phase = 0  # how far through "setup* [teardown] session+ permutation*" we are
        while (tok := self.peek()).kind != "eof":
            word = tok.value if tok.kind == "kw" else ""
            if word == "invariant":
                inv = self.invariant(invariants)
                invariants[inv.label] = inv
            elif word == "setup" and phase == 0:
                self.take()
                setup.append(self.sql("the global setup"))
            elif word == "teardown" and phase == 0:
                self.take()
                teardown, phase = self.sql("the global teardown"), 1
            elif word == "session" and phase <= 2:
                session = self.session(sessions)
                sessions[session.name] = (tok.line, session)
                phase = 2
            elif word == "permutation" and phase >= 2:
                permutations.append(self.permutation())
                phase = 3
            else:
                hint = _HINTS.get(word, "expected setup, teardown, session, permutation"
                                        " or invariant")
                raise self.fail(tok.line, f"unexpected {tok.describe()}: {hint}")
        if not sessions:
            raise self.fail(self.peek().line, "no sessions: a spec needs at least one session")
        return Spec(name, tuple(setup), teardown, tuple(s for _, s in sessions.values()),
                    tuple(permutations), tuple(invariants.values()))

    def session(self, seen: dict[str, tuple[int, SpecSession]]) -> SpecSession:
        start = self.take()
        name = self.name("a session name after 'session'").value
        if name in seen:
            raise self.fail(start.line, f"duplicate session name {name!r}"
                                        f" (first used at line {seen[name][0]})")
        setup = self.optional_sql("setup", f"the setup of session {name!r}")
        steps = []
        while self.at("kw", "step"):
            line = self.take().line
            step_name = self.name("a step name after 'step'").value
            step = SpecStep(step_name, self.sql(f"step {step_name!r}"), name, line)
            if step_name in self.steps:
                raise self.fail(line, f"duplicate step name {step_name!r} (first defined at"
                                      f" line {self.steps[step_name].line})")
            if len(self.steps) == MAX_STEPS:
                raise self.fail(line, f"more than {MAX_STEPS:,} steps; the lab plays no"
                                      " spec that long")
            self.steps[step_name] = step
            steps.append(step)
        if not steps:
            raise self.fail(start.line, f"session {name!r} has no steps")
        teardown = self.optional_sql("teardown", f"the teardown of session {name!r}")
        return SpecSession(name, tuple(steps), setup, teardown)

    def permutation(self) -> tuple[PermutationStep, ...]:
        start = self.take()
        entries: list[tuple[_Token, list[_Token]]] = []
        while self.peek().kind == "name":
            tok = self.take()
            if len(entries) == MAX_STEPS:
                raise self.fail(tok.line, f"permutation of more than {MAX_STEPS:,} steps;"
                                          " the lab plays none that long")
            entries.append((tok, self.markers(tok.value) if self.at("punct", "(") else []))
        if not entries:
            raise self.fail(start.line, f"permutation lists no steps (found"
                                        f" {self.peek().describe()})")
        result = tuple(PermutationStep(tok.value, tuple(m.value for m in markers))
                       for tok, markers in entries)
        lines: dict[tuple[str, str | None], int] = {}
        for tok, markers in entries:
            lines.setdefault((tok.value, None), tok.line)
            for m in markers:
                lines.setdefault((tok.value, m.value), m.line)
        schedule = Schedule(self._programs(), free_order=True)
        try:
            schedule.check(result)  # the same rules as every permutation the lab plays
        except PermutationError as exc:
            line = lines.get((exc.step, exc.marker), start.line)
            raise self.fail(line, str(exc)) from None
        return result

    def _programs(self) -> dict[str, list[str]]:
        programs: dict[str, list[str]] = {}
        for step in self.steps.values():
            programs.setdefault(step.session, []).append(step.name)
        return programs

    def markers(self, step: str) -> list[_Token]:
        self.take()  # "("
        found = []
        while True:
            tok = self.take()
            if tok.kind != "name" and not (tok.kind == "punct" and tok.value == "*"):
                raise self.fail(tok.line, f"expected a step name or '*' in the marker of"
                                          f" step {step!r}, found {tok.describe()}")
            if self.at("kw", "notices"):
                raise self.fail(tok.line, "the 'notices' marker is not supported")
            found.append(tok)
            sep = self.take()
            if sep.kind == "punct" and sep.value == ")":
                return found
            if not (sep.kind == "punct" and sep.value == ","):
                raise self.fail(sep.line, f"expected ',' or ')' in the marker of step"
                                          f" {step!r}, found {sep.describe()}")

    def invariant(self, seen: dict[str, Invariant]) -> Invariant:
        line = self.take().line
        label = self.name("a label after 'invariant', such as \"lost update\"").value
        sql = self.sql(f"invariant {label!r}")
        if label in seen:
            raise self.fail(line, f"duplicate invariant label {label!r}")
        if not sql.strip():
            raise self.fail(line, f"invariant {label!r} has no SQL")
        return Invariant(label, sql)


def parse(text: str, path: str = "<spec>") -> Spec:
    """Parse spec text; `path` names the file in errors and gives the spec its name."""
    return _Parser(text, path).spec(Path(path).stem)


def load(path: str | os.PathLike) -> Spec:
    """Read and parse a spec file; an unreadable file is a SpecError, not a traceback."""
    try:
        if Path(path).stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"{os.fspath(path)} is larger than {MAX_SPEC_BYTES >> 20} MB;"
                            " the lab reads no spec file that large")
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SpecError(f"cannot read {os.fspath(path)}: {reason}") from None
    return parse(text, os.fspath(path))
