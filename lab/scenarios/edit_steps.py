"""Steps and the invariant shared by the two "edit one assignment" scenarios (frame 5.1).

The story: assignment #1 is Resident One in Monday-morning clinic. User A (the chief
resident) adds a note; user B (the coordinator) hands the shift to Resident Three.
Both opened the edit form before either saved.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..models import Assignment, Person
from ..runner import Outcome, RunResult, Verdict
from ..services import assignments

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


def load_form_with_version(s: Session) -> dict[str, object]:
    """Open the form as a dict, with the row's id and version: what the exercises' save sees."""
    a = s.get_one(Assignment, ASSIGNMENT_ID)
    s.info["form"] = {"id": a.id, "version": a.version, **{f: getattr(a, f) for f in FORM_FIELDS}}
    return _shown(a) | {"version": a.version}


def load_versioned(s: Session) -> dict[str, object]:
    """Open the form with the fix: remember the version the user saw."""
    a = assignments.load_for_edit(s, ASSIGNMENT_ID)
    s.info["form"], s.info["version"] = a, a.version
    return {"notes": a.notes, "person": s.get_one(Person, a.person_id).name,
            "version": a.version}


def save_versioned(**changes: object):
    """Save through the ORM's version check (version_id_col): stale -> 409."""

    def versioned_save(s: Session) -> str:
        version = assignments.save_edit(s, s.info["form"], **changes)
        return f"saved: version {s.info['version']} -> {version}"

    return versioned_save


def save_cas(**changes: object):
    """Save with compare-and-set: UPDATE ... WHERE id = :id AND version = :loaded."""

    def cas_save(s: Session) -> str:
        version = assignments.save_edit_cas(s, ASSIGNMENT_ID, s.info["version"], **changes)
        return f"UPDATE ... WHERE version = {s.info['version']}: 1 row, now version {version}"

    return cas_save


def no_lost_update(result: RunResult) -> Verdict:
    """Invariant 7: two concurrent edits never both succeed silently with one erased."""
    row = result.final[0]
    a_kept, b_kept = row["notes"] == A_NOTES, row["person"] == B_PERSON
    failed = {step: code for step, code in result.errors().items()}
    waited = [f"{step[0].upper()} waited for {', '.join(by)}" for step, by in result.waits()]
    how = f" ({'; '.join(waited)})" if waited else ""
    if result.committed("A") and not a_kept:
        return Verdict(Outcome.ANOMALY, f"lost update: A's note {A_NOTES!r} is gone; B's save"
                       f" wrote back the stale copy it loaded before A committed{how}")
    if result.committed("B") and not b_kept:
        return Verdict(Outcome.ANOMALY, f"lost update: B's change to {B_PERSON} is gone{how}")
    if failed:
        who = ", ".join(f"{step} failed with {code}" for step, code in failed.items())
        if a_kept and b_kept:
            return Verdict(Outcome.ABORTED, f"{who}; the loser reloaded, saw the"
                           f" winner's change and retried: both changes survive{how}")
        return Verdict(Outcome.ABORTED, f"{who}; the committed change survives and the"
                       " loser must reload and retry" + how)
    if waited:
        return Verdict(Outcome.WAITED, f"both changes survive{how}")
    return Verdict(Outcome.FINE, "both changes survive")
