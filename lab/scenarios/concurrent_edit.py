"""concurrent-edit: two users save the same assignment (seed frame 5.1), without locks.

The ORM's partial update keeps both edits. A whole-object save (a form PUT) loses A's
edit under READ COMMITTED and fails with 40001 under REPEATABLE READ.
"""

from ..runner import COMMIT, Scenario, Variant, step
from ..seed import seed_schedule
from .edit_steps import A_NOTES, B_PERSON_ID, FINAL_STATE, edit, load, no_lost_update, save_form

PERMUTATION = "a_load b_load a_save b_save a_commit b_commit"


def _sessions(save):
    return {
        "A": [
            step("a_load", load(), "A: opens the edit form for assignment #1"),
            step("a_save", save(notes=A_NOTES), "A: saves a note; takes the row lock"),
            step("a_commit", COMMIT, "A: commits; B's wait ends"),
        ],
        "B": [
            step("b_load", load(), "B: opens the same form; sees no note yet"),
            step("b_save", save(person_id=B_PERSON_ID),
                 "B: saves the shift to Resident Three; blocks until A commits",
                 sqlite="B: saves; A holds SQLite's write lock, so B's read transaction cannot"
                        " become a writer: 'database is locked' (WAL: after A commits)"),
            step("b_commit", COMMIT, "B: commits"),
        ],
    }


SCENARIO = Scenario(
    name="concurrent-edit",
    title="Two users edit the same assignment",
    summary="Two users save one assignment; a whole-object save silently erases the first.",
    frame="5.1",
    setup=seed_schedule,
    final_state=FINAL_STATE,
    variants=(
        Variant(
            name="partial-update",
            summary="The ORM writes only changed columns: both edits survive.",
            sessions=_sessions(edit),
            permutation=PERMUTATION,
            invariant=no_lost_update,
        ),
        Variant(
            name="whole-object-save",
            summary="A form PUT writes every column: READ COMMITTED loses A's edit,"
                    " REPEATABLE READ aborts B with 40001.",
            sessions=_sessions(save_form),
            permutation=PERMUTATION,
            invariant=no_lost_update,
            isolations=("read committed", "repeatable read"),
        ),
    ),
)
