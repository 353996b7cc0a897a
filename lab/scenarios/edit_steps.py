"""Steps and the invariant shared by the two "edit one assignment" scenarios (frame 5.1).

The story: assignment #1 is Resident One in Monday-morning clinic. User A (the chief
resident) adds a note; user B (the coordinator) hands the shift to Resident Three.
Both opened the edit form before either saved.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..models import Assignment
from ..runner import RunResult, Verdict

ASSIGNMENT_ID = 1
A_NOTES = "late start 9:30"
B_PERSON_ID, B_PERSON = 3, "Resident Three"
FORM_FIELDS = ("block_id", "person_id", "rotation_template_id", "role", "notes")

FINAL_STATE = f"""
SELECT a.id, p.name AS person, a.notes
FROM assignment a JOIN person p ON p.id = a.person_id
WHERE a.id = {ASSIGNMENT_ID}
"""


def _shown(a: Assignment) -> dict[str, str]:
    return {"notes": a.notes, "person": a.person.name}


def load(for_update: bool = False):
    """Open the edit form: read the assignment (optionally locking its row)."""

    def load_form(s: Session) -> dict[str, str]:
        stmt = select(Assignment).where(Assignment.id == ASSIGNMENT_ID)
        if for_update:
            stmt = stmt.with_for_update()
        a = s.scalars(stmt).one()
        s.info["form"] = {f: getattr(a, f) for f in FORM_FIELDS}
        return _shown(a)

    return load_form


def edit(**changes: object):
    """The ORM way: change attributes and flush; only the changed columns are written."""

    def orm_edit(s: Session) -> str:
        a = s.get(Assignment, ASSIGNMENT_ID)
        for field, value in changes.items():
            setattr(a, field, value)
        s.flush()
        return "UPDATE assignment SET " + ", ".join(changes) + " (only what changed)"

    return orm_edit


def save_form(**changes: object):
    """What a form PUT does: write every field from the copy the user loaded earlier."""

    def put_form(s: Session) -> str:
        form = {**s.info["form"], **changes}
        result = s.execute(
            update(Assignment)
            .where(Assignment.id == ASSIGNMENT_ID)
            .values(**form, updated_at=func.current_timestamp())
        )
        return f"UPDATE {result.rowcount}: every field from the form, notes={form['notes']!r}"

    return put_form


def no_lost_update(result: RunResult) -> Verdict:
    """Invariant 7: two concurrent edits never both succeed silently with one erased."""
    row = result.final[0]
    a_kept, b_kept = row["notes"] == A_NOTES, row["person"] == B_PERSON
    failed = {step: code for step, code in result.errors().items()}
    waited = [f"{step[0].upper()} waited for {', '.join(by)}" for step, by in result.waits()]
    how = f" ({'; '.join(waited)})" if waited else ""
    if result.committed("A") and not a_kept:
        return Verdict("anomaly", f"lost update: A's note {A_NOTES!r} is gone; B's save"
                       f" wrote back the stale copy it loaded before A committed{how}")
    if result.committed("B") and not b_kept:
        return Verdict("anomaly", f"lost update: B's change to {B_PERSON} is gone{how}")
    if failed:
        who = ", ".join(f"{step} failed with {code}" for step, code in failed.items())
        return Verdict("prevented-by-abort", f"{who}; the committed change survives and the"
                       " loser must reload and retry" + how)
    if waited:
        return Verdict("prevented-by-waiting", f"both changes survive{how}")
    return Verdict("fine", "both changes survive")
