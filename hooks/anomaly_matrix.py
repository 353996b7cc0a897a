"""MkDocs hook: put the anomaly matrix, from a real run, where a page asks for it.

A page writes ``<!-- anomaly-matrix -->``. The matrix comes from ``$LAB_MATRIX_DIR`` (the
test session runs the explorer once and points the docs build there) or, failing that,
from ``build/matrix`` after running ``python -m lab matrix`` now: never typed in by hand.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

MARK = "<!-- anomaly-matrix -->"


@functools.cache
def _snippet() -> str:
    from lab import matrix

    folder = Path(os.environ.get("LAB_MATRIX_DIR") or "build/matrix")
    page = folder / matrix.PAGE
    if not os.environ.get("LAB_MATRIX_DIR") or not page.exists():
        from lab.explorer import targets

        matrix.write(matrix.build(targets("postgresql,sqlite")), str(folder))
    return page.read_text()


def on_page_markdown(markdown: str, **_kwargs) -> str:
    return markdown.replace(MARK, _snippet()) if MARK in markdown else markdown
