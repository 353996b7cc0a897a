"""The anomaly matrix, from a real run over the catalog, agrees with what PostgreSQL
documents for its levels, and says how SQLite differs."""

from __future__ import annotations

import pytest

from lab.matrix import ROWS

def _label(scenario: str, case: str) -> str:
    return next(r.label for r in ROWS if (r.scenario, r.case) == (scenario, case))


LOST_UPDATE = _label("concurrent-edit", "whole-object-save")
READ_SKEW = _label("coverage-report-read-skew", "two-reads")
DIRTY = _label("read-during-write", "report")
WRITE_SKEW = _label("on-call-write-skew", "check-then-act")
PHANTOM = _label("block-capacity-phantom", "count-then-insert")
RATIO = _label("supervision-ratio", "check-then-act")
DUTY = _label("duty-hours", "check-then-add")
RC, RR, SER = "read committed", "repeatable read", "serializable"


def cell(matrix, label: str, backend: str, level: str):
    row = next(r for r in matrix.rows if r.label == label)
    column = next(b for b, i in matrix.columns if backend in b and i == level)
    return matrix.cell(row, column, level)


@pytest.mark.parametrize("label, rc, rr, ser", [
    (LOST_UPDATE, True, False, False),   # RR: first-updater-wins aborts the second save
    (READ_SKEW, True, False, False),     # RR: one snapshot per transaction
    (WRITE_SKEW, True, True, False),     # snapshot isolation permits write skew; SSI does not
    (PHANTOM, True, True, False),
    (RATIO, True, True, False),
    (DUTY, True, True, False),
    (DIRTY, False, False, False),        # no level of PostgreSQL reads uncommitted rows
])
def test_postgresql_cells_match_the_documented_levels(anomaly_matrix, label, rc, rr, ser):
    matrix, _ = anomaly_matrix
    for level, possible in ((RC, rc), (RR, rr), (SER, ser)):
        c = cell(matrix, label, "PostgreSQL", level)
        assert (c.anomalies > 0) == possible, f"{label} under {level}: {c.verdict}"
        assert c.feasible == len(c.exploration.interleavings) > 0


def test_serializable_prevents_write_skew_by_aborting(anomaly_matrix):
    matrix, _ = anomaly_matrix
    for label in (WRITE_SKEW, PHANTOM, RATIO, DUTY):
        c = cell(matrix, label, "PostgreSQL", SER)
        assert c.verdict == "prevented by abort"
        assert all("40001" in i.detail for i in c.exploration.interleavings
                   if i.outcome == "aborted")


def test_the_parent_row_lock_fails_under_repeatable_read_only(anomaly_matrix):
    matrix, _ = anomaly_matrix
    for label in ("fix: lock the call night", "fix: lock the block (capacity)",
                  "fix: lock the block (supervision)", "fix: lock the resident"):
        assert cell(matrix, label, "PostgreSQL", RC).anomalies == 0
        assert cell(matrix, label, "PostgreSQL", RR).anomalies > 0, label
        assert cell(matrix, label, "PostgreSQL", SER).anomalies == 0


def test_sqlite_is_serializable_whatever_level_is_asked(anomaly_matrix):
    matrix, _ = anomaly_matrix
    for row in matrix.rows:
        verdicts = {cell(matrix, row.label, "SQLite", lvl).verdict for lvl in (RC, RR, SER)}
        assert len(verdicts) == 1, f"{row.label}: SQLite differs by level: {verdicts}"
        if not row.label.endswith("(app)"):
            assert cell(matrix, row.label, "SQLite", RC).anomalies == 0, row.label


def test_application_races_break_under_every_level(anomaly_matrix):
    """No isolation level turns a raw constraint error into a clean answer."""
    matrix, _ = anomaly_matrix
    for row in (r for r in matrix.rows if r.label.endswith("(app)")):
        for backend, level in matrix.columns:
            assert matrix.cell(row, backend, level).anomalies > 0


def test_markdown_table_has_a_row_per_race_and_a_column_per_level_and_backend(anomaly_matrix):
    matrix, folder = anomaly_matrix
    table = matrix.markdown().splitlines()
    assert table[0].count("|") == 1 + len(matrix.columns) + 1
    assert len([ln for ln in table if ln.startswith("| ") and "<small>" in ln]) == len(ROWS)
    assert (folder / "anomaly-matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (folder / "anomaly-matrix.md").read_text()
