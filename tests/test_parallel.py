"""The parallel explorer finds what one process finds, in the same order, and the search
reduced by interchangeable sessions and skipped steps counts every class as the full search
does."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lab.explorer import Exploration, _canonical, explore, placements, summary
from lab.runner import Variant
from lab.scenarios import SCENARIOS, get

from conftest import PG, SQLITE

RC, SER = "read committed", "serializable"
SPEC = Path(__file__).resolve().parent.parent / "specs" / "lost-update.spec"
SMALL = 84  # orderings: a case this small is explored both ways


def _played(found: Exploration) -> list[tuple]:
    return [(i.permutation, i.outcome, i.detail, i.replay, i.queued, i.serializable, i.weight)
            for i in found.interleavings]


@pytest.mark.parametrize("name, case, level, db", [
    ("concurrent-edit", "version-check", RC, PG),        # 63 of 84: waits and 409s
    ("double-booking", "raw-error", RC, SQLITE),         # SQLITE_BUSY, a raw error
    ("on-call-write-skew", "check-then-act", SER, PG),   # 40001, the serial check
])
def test_two_workers_find_what_one_process_finds_in_the_same_order(name, case, level, db):
    one = explore(name, case, level, db)
    two = explore(name, case, level, db, workers=2)
    assert _played(two) == _played(one)
    assert summary([two]) == summary([one])
    assert len(one.interleavings) > 10


def test_a_spec_file_is_found_again_by_its_path_in_the_workers():
    one = explore(str(SPEC), None, RC, PG)
    two = explore(str(SPEC), None, RC, PG, workers=2)
    assert _played(two) == _played(one)
    assert one.count("anomaly") + one.not_serializable_count > 0


def _small_cases():
    """Every case of the catalog, cut down until it is small enough to explore in full as
    well: its interchangeable groups to two sessions, then every session to its first
    steps (the same code, fewer of them)."""
    for scenario in SCENARIOS.values():
        for variant in scenario.variants:
            groups = [list(g) for g in variant.interchangeable]
            while _orderings(variant) > SMALL and any(len(g) > 2 for g in groups):
                dropped = max(groups, key=len).pop()
                variant = _cut(variant, {s: st for s, st in variant.sessions.items()
                                         if s != dropped}, groups)
            while _orderings(variant) > SMALL:
                variant = _cut(variant, {s: st[:-1] if len(st) > 1 else st
                                         for s, st in variant.sessions.items()}, groups)
            yield scenario, variant


def _cut(variant: Variant, sessions, groups) -> Variant:
    return replace(variant, sessions=sessions, permutation=_in_order(sessions),
                   interchangeable=tuple(map(tuple, groups)))


def _in_order(sessions):
    from lab.runner import Entry

    return tuple(Entry(st.name) for steps in sessions.values() for st in steps)


def _orderings(variant: Variant) -> int:
    from lab.bounds import orderings

    return orderings([len(s) for s in variant.sessions.values()])


CASES = [(s, v) for s, v in _small_cases() if _orderings(v) > 1]


def test_every_case_of_the_catalog_has_a_small_form_to_check():
    forms = {(s.name, v.name) for s, v in CASES}
    assert all(_orderings(v) <= SMALL for _s, v in CASES)
    assert {(s.name, v.name) for s in SCENARIOS.values() for v in s.variants
            if _orderings(v) > 1} == forms


@pytest.mark.parametrize("db, level", [(PG, RC), (PG, SER), (SQLITE, RC)])
def test_the_reduced_search_counts_every_class_as_the_full_one(db, level):
    """Every small case: where the reduced search played fewer interleavings, the full
    search is played too and every count must match. Where it played as many, the two
    searches are the same walk (a choice is only ever dropped for a weight above 1)."""
    classes = [lambda e, o=o: e.count(o) for o in ("fine", "blocked, then fine", "aborted",
                                                     "deadlock", "anomaly", "stuck")]
    classes += [lambda e: e.not_serializable_count, lambda e: e.feasible]
    reduced_cases = set()
    for scenario, variant in CASES:
        small = replace(scenario, variants=(variant,))
        reduced = explore(small, variant.name, level, db)
        if not reduced.reduced:
            assert reduced.feasible == len(reduced.interleavings)
            continue
        full = explore(small, variant.name, level, db, reduce=False)
        assert not full.reduced and len(reduced.interleavings) < len(full.interleavings)
        label = f"{scenario.name} / {variant.name} / {level} / {db}"
        assert [c(reduced) for c in classes] == [c(full) for c in classes], label
        reduced_cases.add(f"{scenario.name} / {variant.name}")
    # both reductions are exercised: renamings (matcher-queue, id-order swaps) and failed
    # transactions' skipped steps (a 409, a deadlock victim, a 40001)
    must = {"matcher-queue / for-update", "swap-deadlock / id-order",  # renamings, skips
            "concurrent-edit / version-check"}                         # a 409's skips
    if db == PG:
        must.add("swap-deadlock / opposite-order")  # a deadlock victim's skips
    assert must <= reduced_cases, reduced_cases


def test_placements_count_every_place_a_skipped_run_could_take():
    """The weight of skipped steps, against a brute-force count: each skipped step may
    move later (never earlier than where it was played), keeping its session's order
    and the order of the steps that ran."""
    session_of = {"a1": 0, "a2": 0, "a3": 0, "a4": 0, "b1": 1, "b2": 1, "b3": 1,
                  "c1": 2, "c2": 2}
    for path, skipped in [
            (["a1", "b1", "a2", "a3", "b2", "b3"], {2, 3}),        # A's run, B after it
            (["a1", "a2", "b1", "c1", "a3", "b2", "c2"], {4}),     # a run at the end
            (["a1", "b1", "a2", "b2", "a3", "c1", "b3", "c2"], {2, 3, 4}),
            (["a1", "b1", "a2", "a3", "a4", "b2"], {2, 3}),        # a4 runs after the run
            (["a1", "b1", "a2", "b2", "b3", "c1"], {2, 3, 4}),     # two runs at once
    ]:
        assert placements(path, skipped, session_of) == _brute(path, skipped, session_of)


def _brute(path, skipped, session_of) -> int:
    from itertools import permutations

    def ok(order):
        pos = {k: i for i, k in enumerate(order)}
        ran = [k for k in range(len(path)) if k not in skipped]
        if [k for k in order if k not in skipped] != ran:
            return False
        for k in range(len(path)):
            for j in range(k):
                same = session_of[path[j]] == session_of[path[k]]
                if (same or (k in skipped and j not in skipped)) and pos[j] > pos[k]:
                    return False
        return True

    return sum(ok(o) for o in set(permutations(range(len(path)))))


def test_the_canonical_choices_start_a_group_in_its_listed_order():
    session_of = {"w1_a": 0, "w1_b": 0, "w2_a": 1, "w3_a": 2, "x_a": 3}
    names, groups = ["W1", "W2", "W3", "X"], (("W1", "W2", "W3"),)
    assert _canonical(["w1_a", "w2_a", "w3_a", "x_a"], [], session_of, names, groups) \
        == ["w1_a", "x_a"]
    assert _canonical(["w1_b", "w2_a", "w3_a"], ["w1_a"], session_of, names, groups) \
        == ["w1_b", "w2_a"]
    assert _canonical(["w1_b", "w2_a"], [], session_of, names, ()) == ["w1_b", "w2_a"]


def test_a_group_must_name_sessions_of_equal_length():
    variant = get("matcher-queue").variant("nowait")
    with pytest.raises(ValueError, match="interchangeable"):
        replace(variant, interchangeable=(("W1", "nobody"),))
    with pytest.raises(ValueError, match="interchangeable"):
        replace(variant, sessions={**variant.sessions, "W3": variant.sessions["W3"][:1]})


def test_bad_worker_counts_are_one_line_and_exit_code_2():
    out = subprocess.run([sys.executable, "-m", "lab", "explore", "swap-race", "--workers", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "--workers must be 1 or more" in out.stderr
