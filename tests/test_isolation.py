"""PostgreSQL's own isolation specs print exactly PostgreSQL's expected output.

``tests/isolation/specs/NAME.spec`` and ``expected/NAME.out`` are copied unchanged from
PostgreSQL's repository (see tests/isolation/README.md). Each spec is played by
``python -m lab run`` on the embedded PostgreSQL 18 and its output compared byte for
byte, as pg_regress does: with ``expected/NAME.out`` or any ``expected/NAME_N.out``, and
with ``PGDATESTYLE="Postgres, MDY"`` as pg_regress sets it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from lab import cli

HERE = Path(__file__).resolve().parent / "isolation"
SPECS = sorted((HERE / "specs").glob("*.spec"))
# the issue's examples, one for each thing isolationtester prints that the lab once did not
REQUIRED = {"eval-plan-qual", "merge-delete", "async-notify", "index-only-scan",
            "read-only-anomaly-3", "multiple-cic"}
# specs that do what the sandbox role may not (docs/concepts/databases.md, "From spec files")
NEEDS_SUPERUSER = {"eval-plan-qual": "its sys* steps UPDATE and MERGE INTO pg_class"}


def variants(spec: Path) -> list[Path]:
    """expected/NAME.out, then NAME_1.out, NAME_2.out... (pg_regress's alternatives)."""
    folder = HERE / "expected"
    numbered = [p for p in folder.glob(f"{spec.stem}_*.out")
                if p.stem[len(spec.stem) + 1:].isdigit()]
    return [p for p in [folder / f"{spec.stem}.out"] if p.exists()] + sorted(
        numbered, key=lambda p: int(p.stem[len(spec.stem) + 1:]))


def test_the_set_holds_the_issue_examples_and_every_spec_has_its_expected_output():
    assert REQUIRED <= {p.stem for p in SPECS}
    assert all(variants(spec) for spec in SPECS)
    assert (HERE / "LICENSE").exists()
    assert NEEDS_SUPERUSER.keys() <= {p.stem for p in SPECS}


def test_a_spec_that_updates_the_catalog_is_refused_by_the_sandbox(capsys):
    """Why eval-plan-qual needs --superuser: without it, PostgreSQL refuses its sys* steps."""
    spec = HERE / "specs" / "eval-plan-qual.spec"
    assert cli.main(["run", str(spec), "--timeout", "30", "--permutation",
                     "sys1 sysupd2 c1 c2"]) == 0
    assert "ERROR:  permission denied for table pg_class" in capsys.readouterr().out


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_output_is_exactly_postgresql_expected(spec: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PGDATESTYLE", "Postgres, MDY")
    monkeypatch.delenv("LAB_DATABASE_URL", raising=False)  # the embedded PostgreSQL
    # a ceiling, not a pace: deadlock-hard waits out a 10 s deadlock_timeout on purpose
    opt_in = ["--superuser"] if spec.stem in NEEDS_SUPERUSER else []
    assert cli.main(["run", str(spec), "--timeout", "30", *opt_in]) == 0, capsys.readouterr().err
    got = capsys.readouterr().out
    expected = variants(spec)
    if any(p.read_text(encoding="utf-8") == got for p in expected):
        return
    want = expected[0].read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(
        want.splitlines(keepends=True), got.splitlines(keepends=True),
        fromfile=f"tests/isolation/expected/{expected[0].name}",
        tofile=f"python -m lab run tests/isolation/specs/{spec.name}"))
    pytest.fail(f"the output differs from PostgreSQL's expected file:\n{diff}", pytrace=False)
