"""A spec file as a lab scenario: the same runner, trace, plot and explorer as Python ones.

Each session runs its steps' SQL as psql would (autocommit; the text's own BEGIN and COMMIT
decide the transaction). The lab's ``invariant "label" { SQL }`` blocks become the final
state; any row they return is a violation, and the run's verdict names it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..errors import RunFailed
from ..runner import RunResult, Scenario, Step, Variant, Verdict
from ..runner.raw_sql import execute_raw
from ..runner.scenario import RawSQL, format_entry
from ..runner.trace import ResultSet
from ..scenarios.verdicts import judged
from .parser import Spec

CASE = "spec"


def to_scenario(spec: Spec, source: str) -> Scenario:
    sessions = {s.name: [Step(st.name, RawSQL(st.sql), st.sql) for st in s.steps]
                for s in spec.sessions}
    in_order = " ".join(st.name for s in spec.sessions for st in s.steps)
    labels = [i.label for i in spec.invariants]
    variant = Variant(
        name=CASE, summary=f"the steps of {source}", sessions=sessions,
        permutation=(permutations(spec) or [in_order])[0], invariant=_judge(labels),
        session_setup={s.name: RawSQL(s.setup) for s in spec.sessions if s.setup},
        session_teardown={s.name: RawSQL(s.teardown) for s in spec.sessions if s.teardown},
        free_order=True, listed=tuple(permutations(spec)))
    return Scenario(
        name=spec.name, title=spec.name,
        summary=f"spec file; invariants: {', '.join(labels) or 'none'}", frame="spec",
        setup=_sql_blocks(spec.setup, "setup") if spec.setup else None,
        final_state={i.label: i.sql for i in spec.invariants},
        variants=(variant,),
        teardown=_sql_blocks((spec.teardown,), "teardown") if spec.teardown else None,
        raw_sql=True, source=source)


def permutations(spec: Spec) -> list[str]:
    """The spec's permutation lines, as the runner's permutation strings (markers kept)."""
    return [" ".join(format_entry(p.name, p.blockers) for p in perm)
            for perm in spec.permutations]


def _sql_blocks(blocks: tuple[str, ...], what: str):
    """Run the blocks; return what each returned last, as isolationtester prints it."""
    def run(session: Session) -> list[ResultSet]:
        shown = []
        for sql in blocks:
            out = execute_raw(sql, session.connection(), None)
            if out.code is not None:
                raise RunFailed(f"the spec's {what} failed: {out.code} {out.error}")
            shown += out.results[-1:]
        return shown

    return run


def _judge(labels: list[str]):
    def verdict(result: RunResult) -> Verdict:
        broken = [f"{label} ({len(rows)} row{'s' if len(rows) != 1 else ''})"
                  for label, rows in result.tables.items() if rows]
        state = "every invariant holds" if labels else "the spec declares no invariant"
        return judged(result, broken and "violated: " + ", ".join(broken), state)

    return verdict
