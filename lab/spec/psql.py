"""Result sets laid out the way PostgreSQL's isolationtester prints them.

isolationtester (PostgreSQL 14 and later) prints every result set with libpq's
PQprint, options header=1, align=1, fieldSep="|" (printResultSet in
src/test/isolation/isolationtester.c). Matching its expected files byte for byte
means copying PQprint's rules from src/interfaces/libpq/fe-print.c:

- a column is as wide as its longest header or value, counted in bytes;
- a column is numeric unless one of its non-empty values has a character outside
  ``0-9 . E e space -``, starts with E or e, or does not end in a digit. Numeric
  columns, header included, are right-aligned; other columns are left-aligned and
  padded with trailing spaces, the last column too;
- NULL and the empty string both print as nothing and do not affect the numeric test;
- the rule under the header is dashes joined by ``+``;
- the footer is ``(1 row)`` or ``(N rows)``, then a blank line;
- a result with no columns prints nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence

_NUMERIC_CHARS = frozenset("0123456789.Ee -")


def _is_numeric(value: str) -> bool:
    return (
        all(ch in _NUMERIC_CHARS for ch in value)
        and value[0] not in "Ee"
        and value[-1].isascii()
        and value[-1].isdigit()
    )


def _pad(text: str, width: int, right: bool) -> str:
    """printf's %*s / %-*s: pad with spaces up to `width` bytes."""
    fill = " " * max(0, width - len(text.encode()))
    return fill + text if right else text + fill


def aligned_table(columns: Sequence[str], rows: Sequence[Sequence[str | None]]) -> list[str]:
    """Lines exactly as isolationtester (PQprint, aligned, '|' separated) prints a result set,
    including the '(N rows)' / '(1 row)' footer and the blank line after it.

    Values are PostgreSQL text output, or None for NULL. Joining the lines with newlines,
    plus a final newline, gives PQprint's exact output."""
    if not columns:
        return []
    cells = [[value or "" for value in row] for row in rows]
    numeric = [all(_is_numeric(row[j]) for row in cells if row[j]) for j in range(len(columns))]
    widths = [
        max([len(name.encode())] + [len(row[j].encode()) for row in cells])
        for j, name in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        return "|".join(_pad(v, w, num) for v, w, num in zip(values, widths, numeric))

    text = "\n".join(
        [line(columns), "+".join("-" * w for w in widths)]
        + [line(row) for row in cells]
        + [f"({len(rows)} row{'' if len(rows) == 1 else 's'})", ""]
    )
    return text.split("\n")
