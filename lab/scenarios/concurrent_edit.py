"""concurrent-edit: two users save the same assignment (seed frame 5.1), without locks.

The ORM's partial update keeps both edits. A whole-object save (a form PUT) loses A's
edit under READ COMMITTED and fails with 40001 under REPEATABLE READ. The fixes the
original suite planned, a version column (``version_id_col``) and its compare-and-set
form, turn B's stale save into a 409; B reloads, sees A's change and retries.
"""

from ..exercises.kinds import Fix
from ..runner import COMMIT, MatrixRow, Scenario, Variant, step
from .edit_steps import (
    A_NOTES,
    B_PERSON_ID,
    FINAL_STATE,
    edit,
    load,
    load_form_with_version,
    load_versioned,
    no_lost_update,
    save_cas,
    save_form,
    save_versioned,
)

PERMUTATION = "a_load b_load a_save b_save a_commit b_commit"


def _sessions(save, load=load):
    return {
        "A": [
            step("a_load", load, "A: opens the edit form for assignment #1"),
            step("a_save", save(notes=A_NOTES), "A: saves a note; takes the row lock"),
            step("a_commit", COMMIT, "A: commits; B's wait ends"),
        ],
        "B": [
            step("b_load", load, "B: opens the same form; sees no note yet"),
            step("b_save", save(person_id=B_PERSON_ID),
                 "B: saves the shift to Resident Three; blocks until A commits",
                 sqlite="B: saves; A holds SQLite's write lock, so B's read transaction cannot"
                        " become a writer: 'database is locked' (WAL: after A commits)"),
            step("b_commit", COMMIT, "B: commits"),
        ],
    }


FIXED_PERMUTATION = PERMUTATION + " b_reload b_retry b_commit2"


def _fixed(save):
    sessions = _sessions(save, load_versioned)
    sessions["B"][1] = step("b_save", save(person_id=B_PERSON_ID),
                            "B: saves with the version it loaded; waits for A, then gets 409",
                            sqlite="B: saves; A holds SQLite's write lock: 'database is locked'")
    sessions["B"] += [
        step("b_reload", load_versioned, "B: reloads after the 409; sees A's note, version 2"),
        step("b_retry", save(person_id=B_PERSON_ID), "B: saves again with version 2"),
        step("b_commit2", COMMIT, "B: commits"),
    ]
    return sessions


def _with_your_save(save):
    """The whole-form race with the learner's save(session, form, **changes) in place."""
    def saving(**changes):
        return lambda s: save(s, s.info["form"], **changes)

    return Variant("exercise", "Your save, against every interleaving.", {
        "A": [step("a_load", load_form_with_version, "A: opens the form (id, version, fields)"),
              step("a_save", saving(notes=A_NOTES), "A: your save, with a note"),
              step("a_commit", COMMIT, "A: commits")],
        "B": [step("b_load", load_form_with_version, "B: opens the same form"),
              step("b_save", saving(person_id=B_PERSON_ID), "B: your save, to Resident Three"),
              step("b_commit", COMMIT, "B: commits")],
    }, PERMUTATION, no_lost_update)


SCENARIO = Scenario(
    name="concurrent-edit",
    title="Two users edit the same assignment",
    summary="Two users save one assignment; a whole-object save silently erases the first.",
    frame="5.1",
    setup=None,
    final_state=FINAL_STATE,
    variants=(
        Variant(
            name="partial-update",
            summary="The ORM writes only changed columns: both edits survive.",
            sessions=_sessions(edit, load()),
            permutation=PERMUTATION,
            invariant=no_lost_update,
        ),
        Variant(
            name="whole-object-save",
            summary="A form PUT writes every column: READ COMMITTED loses A's edit,"
                    " REPEATABLE READ aborts B with 40001.",
            sessions=_sessions(save_form, load()),
            permutation=PERMUTATION,
            invariant=no_lost_update,
            isolations=("read committed", "repeatable read"),
        ),
        *(Variant(name=name, summary=summary, sessions=_fixed(save),
                  permutation=FIXED_PERMUTATION, invariant=no_lost_update)
          for name, summary, save in (
              ("version-check", "The fix: version_id_col makes B's stale save a 409; B"
               " reloads and retries.", save_versioned),
              ("compare-and-set", "The fix by hand: UPDATE ... WHERE version = :loaded;"
               " rowcount 0 is a 409.", save_cas))),
    ),
    matrix=(
        MatrixRow('lost update (P4)', 'whole-object-save'),
        MatrixRow('fix: version check (409)', 'version-check', fix=True),
    ),
    exercise=Fix(
        function="save",
        task="save(session, form, **changes) writes the user's changes over the form they"
             " loaded (a dict with the row's id, version and fields). No edit may be lost:"
             " a save based on a stale form must be refused with the lab's ConflictError"
             " (a 409), so the user reloads.",
        case=_with_your_save),
)
