"""MkDocs hook: reference pages generated from the code, so they cannot drift.

* ``<!-- cli-reference -->``: every command and option of ``python -m lab``, read from
  its argparse parser (``lab.cli.parser()``).
* ``<!-- er-diagram -->``: an entity-relationship diagram of ``lab.models``, drawn as SVG
  (``reference/domain-model.svg``, a generated file) with its alt text.
"""

from __future__ import annotations

import argparse
import html

from mkdocs.structure.files import File

CLI_MARK, ER_MARK = "<!-- cli-reference -->", "<!-- er-diagram -->"
ER_FILE = "reference/domain-model.svg"


def on_files(files, config, **_kwargs):
    files.append(File.generated(config, ER_FILE, content=er_svg()))
    return files


def on_page_markdown(markdown: str, **_kwargs) -> str:
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    if ER_MARK in markdown:
        markdown = markdown.replace(ER_MARK, f"![{er_alt()}](domain-model.svg)")
    return markdown


# -- the command line -------------------------------------------------------------------
def cli_reference() -> str:
    from lab.cli import parser

    top = parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = [top.description.replace("``", "`"), ""]
    for name, command in sub.choices.items():
        usage = " ".join(command.format_usage().split()).removeprefix("usage: ")
        text = helps.get(name, "")
        out += [f"## {name}", "", text[:1].upper() + text[1:] + ".", "", "```text",
                usage, "```", ""]
        rows = [a for a in command._actions if not isinstance(a, argparse._HelpAction)]
        if rows:
            out += ["| Argument | Meaning | Default |", "|---|---|---|"]
            out += [f"| {_cell(_names(a))} | {_cell(a.help or '')} | {_default(a)} |"
                    for a in rows]
            out.append("")
    return "\n".join(out)


def _names(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    value = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
    return ", ".join(f"`{o}{value}`" for o in action.option_strings)


def _default(action: argparse.Action) -> str:
    if action.choices:
        return "one of " + ", ".join(f"`{c}`" for c in action.choices)
    if action.default in (None, False) or action.default is argparse.SUPPRESS:
        return ""
    return f"`{action.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# -- the domain model -------------------------------------------------------------------
CHAR_W, ROW_H, PAD, GAP_X, GAP_Y = 7.2, 18, 8, 90, 24


def _tables():
    from lab.models import Base

    tables = list(Base.metadata.sorted_tables)
    depth: dict[str, int] = {}
    for t in tables:  # sorted_tables lists a table after those it references
        refs = [fk.column.table.name for fk in t.foreign_keys if fk.column.table is not t]
        depth[t.name] = 1 + max((depth[r] for r in refs), default=-1)
    return tables, depth


def _rows(table) -> list[str]:
    unique = {c.name for con in table.constraints if con.__class__.__name__ ==
              "UniqueConstraint" for c in con.columns}
    unique |= {c.name for c in table.columns if c.unique}
    rows = []
    for c in table.columns:
        marks = [m for m, on in (("PK", c.primary_key), ("FK", c.foreign_keys),
                                 ("UQ", c.name in unique)) if on]
        target = next((f" -> {fk.column.table.name}" for fk in c.foreign_keys), "")
        rows.append(f"{c.name} {_type(c)}{target}" + (f"  {'/'.join(marks)}" if marks else ""))
    return rows


def _type(column) -> str:
    name = type(column.type).__name__.lower()
    return {"enum": "enum", "string": "text", "datetime": "timestamp"}.get(name, name)


def er_svg() -> str:
    """Tables in columns by how deep their foreign keys reach; an arrow per foreign key."""
    tables, depth = _tables()
    boxes: dict[str, tuple[float, float, float, float]] = {}
    x = PAD
    for level in range(max(depth.values()) + 1):
        column = [t for t in tables if depth[t.name] == level]
        width = CHAR_W * max(len(r) for t in column for r in [t.name, *_rows(t)]) + 2 * PAD
        y = PAD
        for t in column:
            height = ROW_H * (len(t.columns) + 1) + PAD
            boxes[t.name] = (x, y, width, height)
            y += height + GAP_Y
        x += width + GAP_X
    total_w = x - GAP_X + PAD
    total_h = max(y + h for _, y, _, h in boxes.values()) + PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}"'
             f' height="{total_h:.0f}" viewBox="0 0 {total_w:.0f} {total_h:.0f}"'
             ' font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">',
             "<title>Entity-relationship diagram of lab.models</title>",
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5"'
             ' markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    for t in tables:  # the arrows first, so boxes are drawn over them
        bx, by, _, _ = boxes[t.name]
        for k, c in enumerate(t.columns):
            for fk in c.foreign_keys:
                px, py, pw, _ = boxes[fk.column.table.name]
                sy, ty = by + ROW_H * (k + 1.5) + PAD / 2, py + ROW_H * 0.5 + PAD / 2
                sx, tx = bx, px + pw
                bend = max(30.0, (sx - tx) / 2)
                parts.append(f'<path d="M {sx:.0f} {sy:.0f} C {sx - bend:.0f} {sy:.0f},'
                             f' {tx + bend:.0f} {ty:.0f}, {tx:.0f} {ty:.0f}" fill="none"'
                             ' stroke="#888" stroke-width="1.2" marker-end="url(#arrow)"/>')
    for t in tables:
        bx, by, bw, bh = boxes[t.name]
        parts.append(f'<rect x="{bx:.0f}" y="{by:.0f}" width="{bw:.0f}" height="{bh:.0f}"'
                     ' rx="4" fill="white" stroke="#4C72B0" stroke-width="1.5"/>')
        parts.append(f'<rect x="{bx:.0f}" y="{by:.0f}" width="{bw:.0f}" height="{ROW_H + 4}"'
                     ' rx="4" fill="#4C72B0"/>')
        parts.append(f'<text x="{bx + PAD:.0f}" y="{by + ROW_H - 3:.0f}" fill="white"'
                     f' font-weight="bold">{html.escape(t.name)}</text>')
        for k, row in enumerate(_rows(t)):
            parts.append(f'<text x="{bx + PAD:.0f}" y="{by + ROW_H * (k + 2) - 2:.0f}"'
                         f' fill="#222">{html.escape(row)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def er_alt() -> str:
    tables, _ = _tables()
    refs = []
    for t in tables:
        targets = sorted({fk.column.table.name for fk in t.foreign_keys})
        if targets:
            refs.append(f"{t.name} references {', '.join(targets)}")
    return (f"Entity-relationship diagram of the lab's {len(tables)} tables"
            f" ({', '.join(t.name for t in tables)}): " + "; ".join(refs) + ".")
