"""aligned_table reproduces result sets copied from PostgreSQL's isolation expected files.

Each expected block is quoted verbatim (trailing spaces included) from the file named
next to it, in src/test/isolation/expected/ of the repository and commit given.
"""

from __future__ import annotations

import pytest

from lab.spec.psql import aligned_table


def printed(text: str) -> list[str]:
    """An excerpt of an expected file, from the header line to the blank line after the footer."""
    assert text.endswith("\n\n")
    return text[:-1].split("\n")


# read-write-unique.out (postgres/postgres b1aa0f22): empty result, then a value wider
# than its header in a numeric column.
def test_zero_rows() -> None:
    assert aligned_table(["i"], []) == printed("i\n-\n(0 rows)\n\n")


def test_numeric_value_wider_than_header() -> None:
    assert aligned_table(["i"], [["42"]]) == printed(" i\n--\n42\n(1 row)\n\n")


# skip-locked.out (postgres/postgres 4a054069): several columns; text columns padded on
# the right, the last one too, and headers wider than the values.
def test_multi_column_text_padding() -> None:
    expected = "id|data|status\n--+----+------\n 1|foo |NEW   \n(1 row)\n\n"
    assert aligned_table(["id", "data", "status"], [["1", "foo", "NEW"]]) == printed(expected)


# lock-update-delete.out (anarazel/postgres 45080383): a void result prints as an empty
# string, so the column stays numeric and the row is all spaces; a boolean is text.
def test_empty_value_under_wide_header() -> None:
    expected = "pg_advisory_lock\n----------------\n                \n(1 row)\n\n"
    assert aligned_table(["pg_advisory_lock"], [[""]]) == printed(expected)


def test_text_value_narrower_than_header() -> None:
    expected = "pg_advisory_unlock\n------------------\nt                 \n(1 row)\n\n"
    assert aligned_table(["pg_advisory_unlock"], [["t"]]) == printed(expected)


def test_numeric_columns_header_wider() -> None:
    assert aligned_table(["key", "value"], [["1", "1"]]) == printed(
        "key|value\n---+-----\n  1|    1\n(1 row)\n\n"
    )
    assert aligned_table(["key", "value"], []) == printed("key|value\n---+-----\n(0 rows)\n\n")


# eval-plan-qual.out (hackorum-dev/postgres 0e4af331), permutation
# "wx2_ext partiallock_ext c2 c1 read_ext": NULLs print as blanks. The text column
# "other" stays left-aligned; "newcol2", all NULL, counts as numeric.
def test_nulls() -> None:
    expected = (
        "accountid|balance|other|newcol|newcol2\n"
        "---------+-------+-----+------+-------\n"
        "checking |   1050|other|    42|       \n"
        "savings  |   1150|     |    42|       \n"
        "(2 rows)\n\n"
    )
    rows = [["checking", "1050", "other", "42", None], ["savings", "1150", None, "42", None]]
    assert aligned_table(["accountid", "balance", "other", "newcol", "newcol2"], rows) == printed(
        expected
    )


# eval-plan-qual.out (hackorum-dev/postgres 0e4af331): negative numbers are numeric;
# "(0,1)" is not.
def test_negative_numbers_and_ctid() -> None:
    expected = (
        "accountid|balance|balance2\n"
        "---------+-------+--------\n"
        "checking |   -600|   -1200\n"
        "savings  |    600|    1200\n"
        "(2 rows)\n\n"
    )
    rows = [["checking", "-600", "-1200"], ["savings", "600", "1200"]]
    assert aligned_table(["accountid", "balance", "balance2"], rows) == printed(expected)

    expected = (
        "tableoid|ctid |a|b|c\n"
        "--------+-----+-+-+-\n"
        "c1      |(0,1)|0|0|0\n"
        "c1      |(0,4)|0|1|0\n"
        "(2 rows)\n\n"
    )
    rows = [["c1", "(0,1)", "0", "0", "0"], ["c1", "(0,4)", "0", "1", "0"]]
    assert aligned_table(["tableoid", "ctid", "a", "b", "c"], rows) == printed(expected)

    expected = "a| b|c\n-+--+-\n1| 0|0\n1|-1|0\n(2 rows)\n\n"
    assert aligned_table(["a", "b", "c"], [["1", "0", "0"], ["1", "-1", "0"]]) == printed(expected)


# merge-join.out (postgres/postgres 1d5caec2): text values wider than the header.
def test_text_values_wider_than_header() -> None:
    plan = [
        "Merge on public.tgt",
        "  ->  Merge Left Join",
        "        Output: tgt.ctid, src.val, src.id, src.ctid",
        "        Inner Unique: true",
        "        Merge Cond: (src.id = tgt.id)",
        "        ->  Index Scan using src_pkey on public.src",
        "              Output: src.val, src.id, src.ctid",
        "        ->  Index Scan using tgt_pkey on public.tgt",
        "              Output: tgt.ctid, tgt.id",
    ]
    expected = (
        "QUERY PLAN                                         \n"
        "---------------------------------------------------\n"
        "Merge on public.tgt                                \n"
        "  ->  Merge Left Join                              \n"
        "        Output: tgt.ctid, src.val, src.id, src.ctid\n"
        "        Inner Unique: true                         \n"
        "        Merge Cond: (src.id = tgt.id)              \n"
        "        ->  Index Scan using src_pkey on public.src\n"
        "              Output: src.val, src.id, src.ctid    \n"
        "        ->  Index Scan using tgt_pkey on public.tgt\n"
        "              Output: tgt.ctid, tgt.id             \n"
        "(9 rows)\n\n"
    )
    assert aligned_table(["QUERY PLAN"], [[p] for p in plan]) == printed(expected)
    assert aligned_table(["id", "val"], [["1", "10"], ["2", "20"], ["3", "30"]]) == printed(
        "id|val\n--+---\n 1| 10\n 2| 20\n 3| 30\n(3 rows)\n\n"
    )


# insert-conflict-specconflict.out (postgres/postgres 5b5455b0): an empty numeric column
# beside numbers, "?column?" over a boolean, and a long text value.
def test_specconflict_excerpts() -> None:
    expected = (
        "pg_advisory_lock|sess|lock\n"
        "----------------+----+----\n"
        "                |   1|   1\n"
        "                |   2|   3\n"
        "(2 rows)\n\n"
    )
    rows = [["", "1", "1"], ["", "2", "3"]]
    assert aligned_table(["pg_advisory_lock", "sess", "lock"], rows) == printed(expected)
    expected = "?column?\n--------\nt       \n(1 row)\n\n"
    assert aligned_table(["?column?"], [["t"]]) == printed(expected)
    expected = (
        "key|data                               \n"
        "---+-----------------------------------\n"
        "k1 |inserted s2 with conflict update s1\n"
        "(1 row)\n\n"
    )
    assert aligned_table(["key", "data"], [["k1", "inserted s2 with conflict update s1"]]) == (
        printed(expected)
    )


# insert-conflict-do-select.out (postgres/postgres 88327092): header padded to a wider value.
def test_header_padded_to_value() -> None:
    expected = "key|val     \n---+--------\n  1|original\n(1 row)\n\n"
    assert aligned_table(["key", "val"], [["1", "original"]]) == printed(expected)


# The numeric test of fe-print.c (do_field), value by value.
@pytest.mark.parametrize(
    ("value", "numeric"),
    [
        ("0", True),
        ("-12.5", True),
        ("1e5", True),
        ("1 2", True),
        ("e5", False),
        ("E5", False),
        ("1.", False),
        ("-", False),
        ("NaN", False),
        ("t", False),
        ("١", False),  # a non-ASCII digit is not a digit to PQprint
    ],
)
def test_numeric_rule(value: str, numeric: bool) -> None:
    fill = " " * (8 - len(value.encode()))
    line = aligned_table(["x" * 8], [[value]])[2]
    assert line == (fill + value if numeric else value + fill)


def test_widths_count_bytes() -> None:
    # PQprint pads with printf, which counts bytes: "é" is two of them in UTF-8.
    assert aligned_table(["ab"], [["é"]])[2] == "é"
    assert aligned_table(["abc"], [["é"]])[2] == "é "


def test_no_columns_prints_nothing() -> None:
    assert aligned_table([], [[]]) == []
