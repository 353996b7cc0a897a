"""isolationtester's output, rendered from the lab's own trace events.

Close enough to diff against PostgreSQL's expected files for specs that use only what
the lab supports: ``starting permutation:``, ``step NAME: SQL`` (`` <waiting ...>`` when
the step was seen blocked, ``<... completed>`` when it finishes), ``ERROR:  message``
and psql-style result tables.
"""

from __future__ import annotations

from ..runner import RunResult
from .psql import aligned_table


def header(sessions: int) -> str:
    return f"Parsed test spec with {sessions} sessions\n"


def permutation_output(result: RunResult) -> str:
    lines = ["", "starting permutation: " + " ".join(e.name for e in result.permutation)]
    for rs in result.setup_results:
        lines += aligned_table(rs.columns, rs.rows)
    events = result.events
    for i, e in enumerate(events):
        if e.kind == "launch":
            waits = i + 1 < len(events) and events[i + 1].kind == "wait" \
                and events[i + 1].step == e.step
            lines.append(f"step {e.step}: {e.detail}" + (" <waiting ...>" if waits else ""))
        elif e.kind == "complete" and e.resumed:
            lines.append(f"step {e.step}: <... completed>")
        elif e.kind == "complete":
            for rs in e.results:
                lines += aligned_table(rs.columns, rs.rows)
        elif e.kind == "error":
            lines.append(f"ERROR:  {e.detail}")
    if result.serial is not None:  # --serial-check: one line after the permutation's output
        lines += result.serial.lines()
    return "\n".join(lines) + "\n"
