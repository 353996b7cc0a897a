"""How much work one command may do, decided before any of it is done.

The number of orderings grows as a multinomial: two sessions of 9 steps have 48,620, and a
spec file of thousands of steps more than can ever be played. So a spec file may have at
most `MAX_STEPS` steps (and a permutation as many entries), and an exploration or a spec's
list of permutations plays at most `DEFAULT_LIMIT` runs unless ``--limit`` (``limit=``)
raises it: past that, the lab refuses at once and says by how much.
"""

from __future__ import annotations

import math

from .errors import UsageError

DEFAULT_LIMIT = 10_000  # runs one exploration, or one spec's permutation lines, may play
MAX_STEPS = 10_000  # steps in one spec file, entries in one permutation: a hard bound
MAX_SPEC_BYTES = 4 << 20  # PostgreSQL's own spec files are a few kB


def orderings(session_lengths: list[int]) -> int:
    """(a+b+...)! / (a! b! ...): 20 for two sessions of three steps."""
    total = math.factorial(sum(session_lengths))
    for n in session_lengths:
        total //= math.factorial(n)
    return total


def amount(n: int) -> str:
    """48,620; or 'about 10^1234' for a number nobody wants printed in full."""
    if n < 10 ** 15:
        return f"{n:,}"
    return f"about 10^{int((n.bit_length() - 1) * math.log10(2))}"


def check(count: int, what: str, noun: str, limit: int | None) -> int | None:
    """How many of `count` runs to play: the first `limit` if given, else all of them,
    unless they are more than DEFAULT_LIMIT: then refuse at once, naming the flag."""
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be a positive number of runs, not {limit}")
        return limit
    if count > DEFAULT_LIMIT:
        all_of_them = f"--limit {count} plays them all, " if count < 10 ** 15 else ""
        raise UsageError(f"{what} has {amount(count)} {noun}, more than the {DEFAULT_LIMIT:,}"
                         f" the lab plays unless told: {all_of_them}--limit N the first N"
                         " (limit=N in Python)")
    return None
