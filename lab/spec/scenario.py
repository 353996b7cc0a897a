"""A spec file as a lab scenario: the same runner, trace, plot and explorer as Python ones.

Each session runs its steps' SQL as psql would (autocommit; the text's own BEGIN and COMMIT
decide the transaction), through the spec driver. The lab's ``invariant "label" { SQL }``
blocks become the final state; any row they return is a violation, and the run's verdict
names it.
"""

from __future__ import annotations

import os

from ..runner import RunResult, Scenario, Step, Variant, Verdict, judged
from ..runner.schedule import Entry
from .driver import RawSQL, SpecDriver, mentioned_tables
from .parser import Spec

CASE = "spec"


def to_scenario(spec: Spec, source: str) -> Scenario:
    sessions = {s.name: [Step(st.name, RawSQL(st.sql), st.sql) for st in s.steps]
                for s in spec.sessions}
    listed = tuple(tuple(Entry(p.name, p.blockers) for p in perm)
                   for perm in spec.permutations)
    in_order = tuple(Entry(st.name) for s in spec.sessions for st in s.steps)
    labels = [i.label for i in spec.invariants]
    variant = Variant(
        name=CASE, summary=f"the steps of {source}", sessions=sessions,
        permutation=(listed or (in_order,))[0], invariant=_judge(labels))
    driver = SpecDriver(
        source=source, setup_blocks=spec.setup, teardown_sql=spec.teardown,
        session_setups={s.name: RawSQL(s.setup) for s in spec.sessions if s.setup},
        session_teardowns={s.name: RawSQL(s.teardown) for s in spec.sessions if s.teardown},
        listed=listed, mentioned=mentioned_tables(
            [*spec.setup, *(st.sql for s in spec.sessions for st in s.steps)]))
    return Scenario(
        name=spec.name, title=spec.name,
        summary=f"spec file; invariants: {', '.join(labels) or 'none'}", frame="spec",
        setup=None, final_state={i.label: i.sql for i in spec.invariants},
        variants=(variant,), driver=driver, not_in_matrix="a spec file, not a catalog race",
        source=os.path.abspath(source))


def _judge(labels: list[str]):
    """Each invariant that returns rows is broken. A spec with no invariant is judged by
    the serial check when the run made one: not serializable is its anomaly."""
    def verdict(result: RunResult) -> Verdict:
        broken = [f"{label} ({len(rows)} row{'s' if len(rows) != 1 else ''})"
                  for label, rows in result.tables.items() if rows]
        check = result.serial
        if labels or check is None or check.serializable is None:
            state = "every invariant holds" if labels else "the spec declares no invariant"
            return judged(result, broken and "violated: " + ", ".join(broken), state)
        if not check.serializable:
            return judged(result, "not serializable: " + "; ".join(check.explanations), "")
        return judged(result, None, str(check).removeprefix("serial check: "))

    return verdict
