"""isolationtester's output, rendered from the lab's own trace events.

Close enough to diff against PostgreSQL's expected files for specs that use only what
the lab supports: ``starting permutation:``, ``step NAME: SQL`` (`` <waiting ...>`` when
the step was seen blocked, ``<... completed>`` when it finishes), ``ERROR:  message``,
psql-style result tables, the sessions' notices (``s1: NOTICE:  ...``) where
isolationtester reads them, notifications after the step that received them, and what
the setup and teardown SQL returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..runner import Event, RunResult
from ..runner.trace import Notice, ResultSet
from .psql import aligned_table


def header(sessions: int) -> str:
    return f"Parsed test spec with {sessions} sessions\n"


def permutation_output(result: RunResult) -> str:
    lines = ["", "starting permutation: " + " ".join(e.name for e in result.permutation)]
    lines += _printed(result.setup_results)
    events = result.events
    done: set[int] = set()  # notices already printed where isolationtester puts them
    for i, e in enumerate(events):
        if i in done:
            continue
        if e.kind == "launch":
            early = _own_notices(events, i, first=True)
            lines += [t for j in early for t in _notice(events[j].notice)]
            done.update(early)
            after = i + 1 + len(early)
            waits = after < len(events) and events[after].kind == "wait" \
                and events[after].step == e.step
            lines.append(f"step {e.step}: {e.detail}" + (" <waiting ...>" if waits else ""))
        elif e.kind == "complete" and e.resumed:
            lines.append(f"step {e.step}: <... completed>")
        elif e.kind == "complete":
            later = _own_notices(events, i, first=False)
            done.update(later)
            lines += _between(e.results, [events[j].notice for j in later])
        elif e.kind == "notice":
            lines += _notice(e.notice)
        elif e.kind == "notify":
            lines.append(f"{e.session}: {e.notification}")
        elif e.kind == "error":
            lines.append(f"ERROR:  {e.detail}")
    lines += _printed(result.teardown_results)
    if result.serial is not None:  # --serial-check: one line after the permutation's output
        lines += result.serial.lines()
    return "\n".join(lines) + "\n"


def _own_notices(events: Sequence[Event], i: int, *, first: bool) -> list[int]:
    """The notice events right after event `i` that are its step's, and came before its
    first result (`first`) or after it."""
    found, j = [], i + 1
    while j < len(events) and events[j].kind == "notice" and events[j].step == events[i].step \
            and events[j].notice.before_first_result == first:
        found.append(j)
        j += 1
    return found


def _between(results: Sequence[ResultSet], notices: list[Notice]) -> list[str]:
    """A step's result sets, each notice after the result sets that came before it."""
    lines: list[str] = []
    for k in range(len(results) + 1):
        for n in notices:
            if n.tables_before == k or (k == len(results) and n.tables_before > k):
                lines += _notice(n)
        if k < len(results):
            lines += aligned_table(results[k].columns, results[k].rows)
    return lines


def _notice(n: Notice) -> list[str]:
    """As isolationtester's notice processor: the session's name, then libpq's text."""
    first, *rest = n.lines()
    return [f"{n.session}: {first}", *rest]


def _printed(items: Iterable[ResultSet | Notice]) -> list[str]:
    return [line for item in items
            for line in (_notice(item) if isinstance(item, Notice)
                         else aligned_table(item.columns, item.rows))]
