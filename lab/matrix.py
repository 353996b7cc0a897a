"""The anomaly matrix: the explorer over the catalog, Hermitage style.

Rows are races labelled with the anomaly they show (and the fixes meant to stop them);
columns are isolation level x backend; a cell says whether *any* feasible interleaving
broke the invariant, and how the others were kept safe. Nothing here is typed in: every
cell comes from playing every interleaving on a real database.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from .db import Target, resolve
from .files import replace_file
from .explorer import Exploration, explorations
from .plot import Described
from .runner import ISOLATION_LEVELS, Outcome
from .scenarios import SCENARIOS, get

SHORT = {"read committed": "RC", "repeatable read": "RR", "serializable": "SER"}


@dataclass(frozen=True)
class Row:
    label: str  # the anomaly, in Hermitage's words where it has one
    scenario: str
    case: str
    fix: bool = False  # a fix's row: does it hold at this level?
    app: bool = False  # an application bug (see MatrixRow.app)


def catalog_rows() -> tuple[Row, ...]:
    """Every row the catalog's scenarios declare: the races first, then the fixes."""
    rows = [Row(r.label, s.name, r.case, r.fix, r.app) for s in SCENARIOS.values()
            for r in s.matrix]
    return tuple(sorted(rows, key=lambda r: r.fix))


ROWS = catalog_rows()


@dataclass(frozen=True)
class Cell:
    row: Row
    isolation: str
    backend: str
    exploration: Exploration

    @property
    def anomalies(self) -> int:
        return self.exploration.count(Outcome.ANOMALY)

    @property
    def feasible(self) -> int:
        """The feasible orderings of the full search (see `Exploration.feasible`)."""
        return self.exploration.feasible

    @property
    def not_serializable(self) -> int:
        """Interleavings the serial check found equal to no serial order."""
        return self.exploration.not_serializable_count

    @property
    def serial(self) -> str:
        """The second figure: how many interleavings are not serializable."""
        unchecked = self.exploration.unchecked
        return f"{self.not_serializable} of {self.feasible} not serializable" + (
            f" ({unchecked} unchecked)" if unchecked else "")

    @property
    def verdict(self) -> str:
        e = self.exploration
        if self.anomalies:
            return f"possible ({self.anomalies} of {self.feasible})"
        if e.count(Outcome.STUCK):
            return f"stuck ({e.count(Outcome.STUCK)} of {self.feasible})"
        if e.count(Outcome.ABORTED) or e.count(Outcome.DEADLOCK):
            return "prevented by abort"
        if e.count(Outcome.WAITED):
            return "prevented by waiting"
        return "prevented"


@dataclass
class Matrix:
    rows: tuple[Row, ...]
    columns: list[tuple[str, str]]  # (backend label, isolation)
    cells: dict[tuple[str, str, str], Cell]  # (row label, backend, isolation)

    def cell(self, row: Row, backend: str, isolation: str) -> Cell:
        return self.cells[(row.label, backend, isolation)]

    @property
    def runs(self) -> int:
        """Feasible orderings in all, each played or stood for by a renaming."""
        return sum(c.feasible for c in self.cells.values())

    @property
    def played(self) -> int:
        return sum(len(c.exploration.interleavings) for c in self.cells.values())

    def markdown(self) -> str:
        head = ["Race (scenario / case)"] + [f"{_short_backend(b)} {SHORT[i]}"
                                             for b, i in self.columns]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows:
            cells = [self.cell(row, b, i) for b, i in self.columns]
            cells = [(f"**{c.verdict}**" if c.anomalies else c.verdict) + f"<br>{c.serial}"
                     for c in cells]
            lines.append(f"| {row.label}<br><small>{row.scenario} / {row.case}</small> | "
                         + " | ".join(cells) + " |")
        backends = sorted({b for b, _ in self.columns})
        where = ", ".join(backends)
        lines += ["", f"{self.runs} interleavings played on {where}." if self.played == self.runs
                  else f"{self.runs} feasible interleavings on {where}, {self.played} of them"
                  " played. Two exact reductions stand one ordering for several: interchangeable"
                  " sessions are played in one order and counted for every renaming, and the"
                  " steps of a failed transaction, which send nothing, are played at once and"
                  " counted for every place they could take. In \"k of n\", n counts the"
                  " feasible orderings of the full search."]
        lines[-1] += " Each cell gives the invariant's figure, then the serial check's."
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:  # notebooks: the table as text...
        return self.markdown().rstrip("\n")

    def _repr_markdown_(self) -> str:  # ...or rendered, where the front end can
        return self.markdown()

    def heatmap(self) -> Figure:
        """Share of interleavings that broke the invariant; prevented cells say how."""
        n_rows, n_cols = len(self.rows), len(self.columns)
        fig = Described(figsize=(2.2 + 1.25 * n_cols, 0.9 + 0.55 * n_rows), layout="constrained")
        fig.alt = self.alt_text()
        ax = fig.add_subplot()
        share = [[self.cell(r, b, i).anomalies / max(self.cell(r, b, i).feasible, 1)
                  for b, i in self.columns] for r in self.rows]
        cmap = LinearSegmentedColormap.from_list("lab", ["#e8f3e8", "#f6c48f", "#c0392b"])
        ax.imshow(share, cmap=cmap, vmin=0, vmax=1, aspect="auto")
        for y, r in enumerate(self.rows):
            for x, (b, i) in enumerate(self.columns):
                c = self.cell(r, b, i)
                text = (f"{c.anomalies}/{c.feasible}" if c.anomalies else
                        c.verdict.replace("prevented by ", "").replace("prevented", "ok"))
                text += (f"\nNS {c.not_serializable}/{c.feasible}"  # unless it judged none
                         if c.exploration.unchecked < c.feasible else "\nNS unchecked")
                ax.text(x, y, text, ha="center", va="center", fontsize=8,
                        color="white" if share[y][x] > 0.6 else "black")
        ax.set_xticks(range(n_cols), [f"{_short_backend(b)}\n{SHORT[i]}"
                                      for b, i in self.columns], fontsize=8)
        ax.set_yticks(range(n_rows), [r.label for r in self.rows], fontsize=8)
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        ax.set_title("anomalous interleavings / feasible interleavings; NS: not serializable",
                     fontsize=9)
        return fig

    def alt_text(self) -> str:
        """The heatmap in words: each race, where it broke and where it was not serializable."""
        parts = []
        for r in self.rows:
            broke, not_serial = ([f"{_short_backend(b)} {SHORT[i]}" for b, i in self.columns
                                  if figure(self.cell(r, b, i))]
                                 for figure in (lambda c: c.anomalies,
                                                lambda c: c.not_serializable))
            parts.append(f"{r.label}: " + (f"breaks under {', '.join(broke)}" if broke
                                           else "never breaks") +
                         (f", not serializable under {', '.join(not_serial)}"
                          if not_serial else ""))
        return (f"Heatmap of the anomaly matrix, {len(self.rows)} races by"
                f" {len(self.columns)} level and backend columns. " + "; ".join(parts) + ".")

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.heatmap().savefig(buf, format="png", dpi=110)
        return buf.getvalue()

    def page(self) -> str:
        """The markdown table and the heatmap inlined, for the docs page."""
        data = base64.b64encode(self.png()).decode()
        alt = self.alt_text().replace("[", "(").replace("]", ")")
        return self.markdown() + f"\n![{alt}](data:image/png;base64,{data})\n"


PAGE, PICTURE = "anomaly-matrix.md", "anomaly-matrix.png"


def write(matrix: Matrix, folder: str) -> list[str]:
    """The docs snippet (table + inlined heatmap) and the PNG, each replaced whole."""
    os.makedirs(folder, exist_ok=True)
    written = []
    for name, data in ((PAGE, matrix.page().encode()), (PICTURE, matrix.png())):
        path = os.path.join(folder, name)
        replace_file(path, data)
        written.append(path)
    return written


def _short_backend(label: str) -> str:
    return "PG" if "PostgreSQL" in label else "SQLite"


def build(dbs: Sequence[Target | str], *, rows: Sequence[Row] = ROWS,
          levels: Sequence[str] = ISOLATION_LEVELS,
          progress: Callable[[str], Callable[[Exploration], None]] | None = None,
          workers: int = 1) -> Matrix:
    """Explore every row's case under every level on every backend (`dbs` as for `Run`);
    `workers` processes share the interleavings (lab.parallel), with the same result."""
    targets = [db if isinstance(db, Target) else resolve(db) for db in dbs]
    cases = [(get(row.scenario), row.case) for row in rows]
    cells: dict[tuple[str, str, str], Cell] = {}
    columns: list[tuple[str, str]] = []
    found = explorations(cases, targets, levels, progress=progress,  # case, then level
                         workers=workers)
    for _target in targets:
        done = {(k, level): next(found) for k in range(len(rows)) for level in levels}
        for level in levels:
            backend = done[(0, level)].backend
            for k, row in enumerate(rows):
                cells[(row.label, backend, level)] = Cell(row, level, backend, done[(k, level)])
            columns.append((backend, level))
    return Matrix(tuple(rows), columns, cells)
