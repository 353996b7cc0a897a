"""explicit-locking: both users lock the row with SELECT ... FOR UPDATE before editing.

On PostgreSQL B waits at its SELECT until A commits, then reads A's change, so its
whole-form save keeps it. SQLite has no row locks and SQLAlchemy drops FOR UPDATE there:
the trace shows what SQLite does instead.
"""

from ..exercises.kinds import Fix
from ..runner import COMMIT, MatrixRow, Scenario, Variant, step
from .edit_steps import (
    A_NOTES,
    ASSIGNMENT_ID,
    B_PERSON_ID,
    FINAL_STATE,
    load,
    no_lost_update,
    save_form,
)


def _with_your_load(load_form):
    """Whole-form saves, each after the learner's load_form(session, assignment_id)."""
    def loading(s):
        s.info["form"] = load_form(s, ASSIGNMENT_ID)
        return {k: s.info["form"][k] for k in ("notes", "person_id")}

    return Variant("exercise", "Your load_form, then a whole-form save.", {
        "A": [step("a_load", loading, "A: your load_form"),
              step("a_save", save_form(notes=A_NOTES), "A: saves the whole form, with a note"),
              step("a_commit", COMMIT, "A: commits")],
        "B": [step("b_load", loading, "B: your load_form"),
              step("b_save", save_form(person_id=B_PERSON_ID),
                   "B: saves the whole form, to Resident Three"),
              step("b_commit", COMMIT, "B: commits")],
    }, "a_load b_load a_save b_save a_commit b_commit", no_lost_update)


SCENARIO = Scenario(
    name="explicit-locking",
    title="Lock the row before editing it",
    summary="Both users SELECT ... FOR UPDATE; B waits for A, then sees A's change.",
    frame="5.1",
    setup=None,
    final_state=FINAL_STATE,
    variants=(
        Variant(
            name="select-for-update",
            summary="B's locking read waits for A's commit, then returns A's note.",
            sessions={
                "A": [
                    step("a_lock", load(for_update=True),
                         "A: opens the form with SELECT ... FOR UPDATE"),
                    step("a_save", save_form(notes=A_NOTES), "A: saves a note"),
                    step("a_commit", COMMIT, "A: commits; releases the row lock",
                         sqlite="A: commits; with a rollback journal it waits for B's read lock"),
                ],
                "B": [
                    step("b_lock", load(for_update=True),
                         "B: SELECT ... FOR UPDATE; blocks until A commits, then sees A's note",
                         sqlite="B: FOR UPDATE is dropped on SQLite: B reads at once, no note"),
                    step("b_save", save_form(person_id=B_PERSON_ID),
                         "B: saves the shift to Resident Three from its fresh read",
                         sqlite="B: saves from its stale read: 'database is locked'"),
                    step("b_commit", COMMIT, "B: commits"),
                ],
            },
            permutation="a_lock b_lock a_save a_commit b_save b_commit",
            invariant=no_lost_update,
        ),
    ),
    matrix=(MatrixRow("fix: FOR UPDATE before the form loads", "select-for-update", fix=True),),
    exercise=Fix(
        function="load_form",
        task="load_form(session, assignment_id) returns the assignment's form fields as a dict"
             " (block_id, person_id, rotation_template_id, role, notes). The form is saved"
             " whole afterwards, so the copy it returns must be one nobody else can change"
             " before this transaction ends: no edit may be lost, on PostgreSQL or SQLite.",
        case=_with_your_load),
)
