"""The schedule's rules, without a database: permutation checks, markers, playable(), waits.

The same `Schedule.check` judges Python scenarios' permutations and spec files' lines, as
isolationtester's check_testspec does, so these rules are tested once, here.
"""

from __future__ import annotations

import pytest

from lab.errors import PermutationError
from lab.runner import Entry, Schedule
from lab.runner.schedule import parse_entries

PROGRAMS = {"A": ["a1", "a2", "a3"], "B": ["b1", "b2"]}


def schedule(free_order: bool = False) -> Schedule:
    return Schedule(PROGRAMS, free_order=free_order)


def refusal(permutation: str, free_order: bool = False) -> PermutationError:
    with pytest.raises(PermutationError) as info:
        schedule(free_order).entries(permutation)
    return info.value


# -- reading --------------------------------------------------------------------------

def test_entries_read_names_markers_and_quotes() -> None:
    assert parse_entries('a1 b1(*) a2(b1, "b 2")') == (
        Entry("a1"), Entry("b1", ("*",)), Entry("a2", ("b1", "b 2")))
    assert str(Entry("a2", ("b1", "b 2"))) == 'a2(b1, "b 2")'
    assert str(Entry('say "hi"')) == '"say ""hi"""'


@pytest.mark.parametrize("text, message", [
    ("a1 (", "cannot read the permutation"),
    ("a1()", "empty blocker marker after 'a1'"),
])
def test_unreadable_permutations(text: str, message: str) -> None:
    with pytest.raises(PermutationError, match=message):
        parse_entries(text)


# -- checking ---------------------------------------------------------------------------

def test_a_permutation_in_program_order_passes() -> None:
    assert [e.name for e in schedule().entries("a1 b1 a2 b2 a3")] == [
        "a1", "b1", "a2", "b2", "a3"]


@pytest.mark.parametrize("permutation, message, step, marker", [
    ("a1 zz", "permutation names unknown step 'zz'; steps are: a1 a2 a3 b1 b2", "zz", None),
    ("a1 a1", "step 'a1' appears twice", "a1", None),
    ("a2 a1", "runs session A's steps as a2 a1; they must keep their order: a1 a2 a3",
     "a2", None),
    ("a1 b1(zz)", "marker of step 'b1' names unknown step 'zz'", "b1", "zz"),
    ("a1 b1(a2)", "names step 'a2', which this permutation does not run", "b1", "a2"),
    ("a1 a2(a1)", "step 'a2' cannot be blocked by 'a1': both are in session 'A'", "a2", "a1"),
    ("", "the permutation is empty", None, None),
])
def test_bad_permutations_name_the_step(permutation, message, step, marker) -> None:
    err = refusal(permutation)
    assert message in str(err)
    assert (err.step, err.marker) == (step, marker)


def test_free_order_allows_reordering_and_repeats_but_not_bad_markers() -> None:
    assert len(schedule(free_order=True).entries("a2 a1 a2 b1")) == 4
    assert "both are in session 'A'" in str(refusal("a1 a2(a1)", free_order=True))


def test_a_step_name_used_by_two_sessions_is_refused() -> None:
    with pytest.raises(PermutationError, match="'x' is used twice"):
        Schedule({"A": ["x"], "B": ["x"]})


# -- progress ---------------------------------------------------------------------------

def test_admission_follows_program_order() -> None:
    s = schedule()
    assert s.admissible(Entry("a1")) == "A"
    with pytest.raises(PermutationError, match="out of order: session A plays a1 next"):
        s.admissible(Entry("a2"))
    s.admit(Entry("a1"))
    s.admit(Entry("a2"))
    s.admit(Entry("a3"))
    with pytest.raises(PermutationError, match="plays nothing \\(it is done\\) next"):
        s.admissible(Entry("a3"))


def test_playable_is_each_sessions_next_step_unless_it_waits() -> None:
    s = schedule()
    assert s.playable() == ["a1", "b1"]
    launch = s.admit(Entry("a1"))
    assert s.playable() == ["a2", "b1"]
    s.wait(launch)  # A is blocked: its next step cannot start
    assert s.playable() == ["b1"]
    assert s.report("A") is launch
    assert s.playable() == ["a2", "b1"]
    for name in ("a2", "a3", "b1", "b2"):
        s.admit(Entry(name))
    assert s.playable() == []


def test_launches_are_numbered_in_order() -> None:
    s = schedule()
    assert [s.admit(Entry(n)).order for n in ("b1", "a1", "b2")] == [1, 2, 3]
    assert [str(e) for e in s.played] == ["b1", "a1", "b2"]


def test_star_marker_holds_the_report_until_a_later_step_launches() -> None:
    s = schedule()
    marked = s.admit(Entry("a1", ("*",)))
    s.wait(marked)
    assert s.held_by(marked) == ("marked (*)",)
    s.admit(Entry("b1"))
    assert s.held_by(marked) == ()


def test_step_marker_holds_the_report_while_that_step_is_active() -> None:
    s = schedule()
    first = s.admit(Entry("b1"))
    s.wait(first)  # b1 is active: launched, not yet reported
    marked = s.admit(Entry("a1", ("b1",)))
    assert s.held_by(marked) == ("B",)
    assert s.marker_names() == set()  # only *waiting* steps' markers count
    s.wait(marked)
    assert s.marker_names() == {"b1"}
    s.report("B")
    assert s.held_by(marked) == ()
