"""A race is one file: every scenario the catalog discovers must also be everywhere a
reader looks for it. A new scenario without its notebook, nav entry, README row or
matrix decision fails here, naming what is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from lab import matrix
from lab.exercises import Fix
from lab.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]


def _nav() -> dict[str, str]:
    """mkdocs.yml's nav as {page path: title}."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda *_: None)  # !!python tags: not needed here
    found: dict[str, str] = {}

    def walk(items) -> None:
        for item in items:
            for title, value in item.items():
                if isinstance(value, list):
                    walk(value)
                else:
                    found[value] = title

    walk(yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)["nav"])
    return found


NAV = _nav()
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_has_its_notebook_nav_entry_readme_row_and_matrix_decision(name):
    scenario = SCENARIOS[name]
    notebooks = sorted((ROOT / "notebooks").glob(f"[0-9][0-9]-{name}.ipynb"))
    assert len(notebooks) == 1, f"{name}: expected one notebooks/NN-{name}.ipynb"
    first = json.loads(notebooks[0].read_text())["cells"][0]
    assert "".join(first["source"]).splitlines()[0] == f"# {scenario.title}", \
        f"{name}: the notebook's heading is not the scenario's title"
    page = f"notebooks/{notebooks[0].name}"
    assert NAV.get(page) == scenario.title, f"{name}: mkdocs.yml nav must list {page}" \
        f" as {scenario.title!r}"
    assert re.search(rf"^\| [^|]+ \| [^|]*`{re.escape(name)}`", README, re.M), \
        f"{name}: no row in the README's race table"
    assert scenario.matrix and not scenario.not_in_matrix, \
        f"{name}: every race is in the anomaly matrix: declare its rows (matrix=...)"
    for row in scenario.matrix:
        scenario.variant(row.case)  # a row names a real case


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
HOME = (ROOT / "docs" / "index.md").read_text()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_notebook_is_in_the_nav_and_listed_on_the_home_page(notebook):
    page = f"notebooks/{notebook}"
    assert page in NAV, f"mkdocs.yml nav must list {page}"
    assert f"]({page})" in HOME, f"docs/index.md must link {page} from its table"
    number = notebook[:2]
    assert re.search(rf"^\| {number} \|.*\]\({re.escape(page)}\)", HOME, re.M), \
        f"the home page's table needs a row {number} for {page}"


def test_the_home_page_leads_to_start_here_first():
    first_link = re.search(r"\]\(([^)]+)\)", HOME).group(1)
    assert first_link == "notebooks/00-start-here.ipynb"
    assert NAV.get("notebooks/00-start-here.ipynb") == "Start here"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_race_notebook_ends_with_its_exercise(name):
    scenario = SCENARIOS[name]
    assert scenario.exercise is not None, f"{name}: declare its exercise (Scenario.exercise)"
    (notebook,) = (ROOT / "notebooks").glob(f"[0-9][0-9]-{name}.ipynb")
    cells = json.loads(notebook.read_text())["cells"]
    heading = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith(
        "## Exercise"))
    rest = "".join("".join(c["source"]) for c in cells[heading:] if c["cell_type"] == "code")
    if isinstance(scenario.exercise, Fix):
        fn = scenario.exercise.function
        assert f"def {fn}(" in rest, f"{name}: the naive {fn} to edit"
        assert f"exercises.check({name!r}, {fn})" in rest
        assert f"exercises.check({name!r}, solutions.{fn})" in rest
    else:
        assert f"exercises.question({name!r})" in rest and f"exercises.answer({name!r}," in rest
    assert not any("## " in "".join(c["source"]) for c in cells[heading + 1:]
                   if c["cell_type"] == "markdown"), f"{name}: the exercise must come last"


def test_the_matrix_rows_are_exactly_what_the_scenarios_declare():
    declared = {(s.name, r.case, r.label) for s in SCENARIOS.values() for r in s.matrix}
    assert {(r.scenario, r.case, r.label) for r in matrix.ROWS} == declared
    assert len({r.label for r in matrix.ROWS}) == len(matrix.ROWS), "row labels must differ"
