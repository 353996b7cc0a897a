"""The contention study's invariant count: a swap chain from the seeded owner to the owner
now is intact; every swap that moved a shift away from someone who no longer held it is
counted once."""

from __future__ import annotations

from lab.contention.invariants import unchained

ADAMS, BAKER, CHEN = 4, 5, 6


def test_a_chain_of_swaps_from_the_first_owner_to_the_last_breaks_nothing():
    moves = [(3, ADAMS, BAKER), (3, BAKER, CHEN), (3, CHEN, ADAMS)]
    assert unchained({3: ADAMS}, {3: ADAMS}, moves) == 0
    assert unchained({3: ADAMS}, {3: CHEN}, moves[:2]) == 0
    assert unchained({3: ADAMS, 8: ADAMS}, {3: ADAMS, 8: ADAMS}, []) == 0


def test_two_swaps_away_from_one_owner_count_once_whoever_won():
    lost = [(3, ADAMS, BAKER), (3, ADAMS, CHEN)]  # both read Dr Adams as the owner
    assert unchained({3: ADAMS}, {3: CHEN}, lost) == 1
    assert unchained({3: ADAMS}, {3: BAKER}, lost) == 1
    assert unchained({3: ADAMS}, {3: BAKER}, [(3, ADAMS, BAKER), (3, ADAMS, BAKER)]) == 1


def test_each_shift_is_judged_on_its_own():
    moves = [(3, ADAMS, BAKER), (8, ADAMS, CHEN), (8, ADAMS, BAKER)]
    assert unchained({3: ADAMS, 8: ADAMS}, {3: BAKER, 8: BAKER}, moves) == 1
