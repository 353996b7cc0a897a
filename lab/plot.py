"""Timeline of a run: one lane per session, a box per step, hatched lock waits, and what
a step's session heard from the server (a NOTICE a trigger raised, a NOTIFY) above its box.

The x axis is the conductor's logical step order by default, so the picture is the same on
every run; ``wall_clock=True`` plots milliseconds instead (it varies run to run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure  # a bare Figure: no pyplot state, no GUI backend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from .db.protocol import Lock
from .runner.outcome import Outcome
from .runner.result import RunResult
from .runner.trace import Notice, Notification

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#8172B3", "#937860", "#DA8BC3")
OUTCOME_COLORS = {Outcome.ANOMALY: "#C44E52", Outcome.WAITED: "#2E7D32",
                  Outcome.ABORTED: "#B8860B", Outcome.DEADLOCK: "#B8860B",
                  Outcome.FINE: "#2E7D32", Outcome.STUCK: "#C44E52"}
HALF = 0.38
HEARD_COLOR = "#6A4C93"


@dataclass
class _Span:
    session: str
    step: str
    start: float
    end: float
    wait_from: float | None = None
    blockers: tuple[str, ...] = ()
    marks: list[tuple[str, Any]] = field(default_factory=list)  # (kind, label or Lock)
    heard: list[Notice | Notification] = field(default_factory=list)


def _spans(result: RunResult, wall_clock: bool) -> list[_Span]:
    """Steps as spans on the chosen axis; a waiting step ends where it completed."""
    spans: dict[str, _Span] = {}
    col = -1
    for e in result.events:
        if e.kind == "launch":
            col += 1
        x = e.wall_ms if wall_clock else float(col)
        if e.kind == "end":
            continue  # an open transaction rolled back at the end: in the text, not the picture
        if e.step not in spans:
            spans[e.step] = _Span(e.session, e.step, x, x)
        span = spans[e.step]
        span.end = max(span.end, x)
        if e.kind == "wait":
            span.wait_from, span.blockers = span.start, e.blockers
        elif e.kind == "commit":
            span.marks.append(("commit", f"#{e.commit_no}"))
        elif e.kind == "error":
            span.marks.append(("error", e.code or "error"))
        elif e.kind == "rollback" and not e.after_error:
            span.marks.append(("rollback", ""))
        elif e.kind == "lock":
            span.marks.append(("lock", e.lock))
        elif e.kind in ("notice", "notify"):
            span.heard.append(e.notice or e.notification)
    return list(spans.values())


class Described(Figure):
    """A figure whose text form is its alt text: notebooks record it as the output's
    text/plain, and the docs build puts it on the image (hooks/alt_text.py)."""

    alt = ""

    def __repr__(self) -> str:
        return self.alt or super().__repr__()


LANE_HEIGHT_IN = 1.05  # inches per session lane: room for a wait label and two caption rows


def timeline(result: RunResult, ax: Axes | None = None, *, wall_clock: bool = False) -> Figure:
    """Draw `result` on `ax` (or a new figure) and return the figure.

    The figure explains itself: a legend of the marks it uses, with the verdict line (the
    verdict, then the serial check's) as the legend's title, and labels placed so that no
    two overlap.
    """
    sessions = list(result.sessions)
    if ax is None:
        fig = Described(figsize=(max(7.0, 1.15 * len(result.permutation) + 2.2),
                                 1.6 + LANE_HEIGHT_IN * len(sessions)), layout="constrained")
        fig.alt = alt_text(result)
        ax = fig.add_subplot()
    fig = ax.figure
    lane = {s: len(sessions) - 1 - i for i, s in enumerate(sessions)}
    width = HALF if not wall_clock else 0.0
    captions: list[Text] = []  # the labels under the boxes, placed without overlap below
    spans = _spans(result, wall_clock)
    for sp in spans:
        y, color = lane[sp.session], PALETTE[sessions.index(sp.session) % len(PALETTE)]
        left = sp.start - width
        if sp.wait_from is not None:
            ax.add_patch(Rectangle((left, y - 0.3), sp.end - sp.start + 2 * width, 0.6,
                                   facecolor="white", edgecolor=color, hatch="///", lw=1.2))
            ax.text((sp.start + sp.end) / 2, y + 0.36, f"waits for {', '.join(sp.blockers)}",
                    ha="center", va="bottom", fontsize=8, color="#444444", style="italic")
            ax.add_patch(Rectangle((sp.end - width, y - 0.3), 2 * width or 1, 0.6,
                                   facecolor=color, alpha=0.85, lw=0))
        else:
            ax.add_patch(Rectangle((left, y - 0.3), sp.end - sp.start + 2 * width or 1, 0.6,
                                   facecolor=color, alpha=0.85, lw=0))
        ax.text(sp.start, y, sp.step, ha="center", va="center", fontsize=8,
                color="white" if sp.wait_from is None else "#222222", fontweight="bold")
        captions += _marks(ax, sp, y, width)
    n = len(result.permutation)
    ax.set_yticks(range(len(sessions)), [f"session {s}" for s in reversed(sessions)])
    ax.set_ylim(-0.8, len(sessions) - 0.25)
    if wall_clock:
        ax.set_xlabel("milliseconds since the run started (varies run to run)")
        ax.autoscale(axis="x")
    else:
        ax.set_xlim(-0.7, max(n, 1) - 0.3)
        ax.set_xticks(range(n), [f"{i + 1}" for i in range(n)])
        ax.set_xlabel("step order (the conductor's permutation)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"{result.scenario} · {result.case} · {result.isolation.upper()} · "
                 f"{result.backend}", fontsize=10, loc="left")
    _legend(fig, result, {kind for sp in spans for kind, _ in sp.marks}
            | ({"wait"} if result.waits() else set())
            | ({"heard"} if any(sp.heard for sp in spans) else set()))
    _separate(fig, captions)
    return fig


def alt_text(result: RunResult) -> str:
    """What the picture shows, for someone who cannot see it: the run and its verdict."""
    waits = "; ".join(f"{step} waits for {', '.join(by)}" for step, by in result.waits())
    commits = ", ".join(result.commit_order())
    return (f"Timeline of {result.title}: {len(result.permutation)} steps"
            + (f"; {waits}" if waits else "; nobody waits")
            + (f"; commits in the order {commits}" if commits else "; nobody commits")
            + (f"; {result.serial.lines()[0]}" if result.serial else "")
            + (f". Verdict: {result.verdict}" if result.verdict is not None else "."))


LEGEND = {  # mark -> (handle, label), in the order the legend lists them
    "wait": (Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="#555555", hatch="///"),
             "waiting for a lock"),
    "commit": (Line2D([], [], ls="", marker="o", ms=9, color="#2E7D32"),
               "commit, #n in commit order"),
    "error": (Line2D([], [], ls="", marker="X", ms=9, color="#C44E52"), "error, code below"),
    "rollback": (Line2D([], [], ls="", marker="o", ms=8, mfc="white", mec="#555555", mew=1.5),
                 "rollback"),
    "lock": (Line2D([], [], ls="", marker="v", ms=7, color="#333333"),
             "locks taken, listed below"),
    "heard": (Line2D([], [], ls="", marker="D", ms=5, color=HEARD_COLOR),
              "NOTICE or NOTIFY heard, above"),
}


def _legend(fig: Figure, result: RunResult, present: set[str]) -> None:
    """The marks this figure uses, under the plot. The legend's title is the verdict line:
    the invariant's verdict, then the serial check's first line."""
    keys = [k for k in LEGEND if k in present]
    inches = fig.get_figure(root=True).get_figwidth()
    per_row = max(1, int(inches * 72 // 175))
    verdict = result.verdict
    title = "\n".join(_wrap(line, int(inches * 72 / 4.9)) for line in [f"verdict: {verdict}"]
                      + (result.serial.lines()[:1] if result.serial else [])) \
        if verdict is not None else None
    legend = fig.legend([LEGEND[k][0] for k in keys], [LEGEND[k][1] for k in keys],
                        loc="outside lower left", ncols=min(len(keys), per_row) or 1,
                        fontsize=8, frameon=False, title=title, alignment="left",
                        title_fontsize=8.5)
    if verdict is not None:
        legend.get_title().set_color(OUTCOME_COLORS[verdict.outcome])


def _marks(ax: Axes, sp: _Span, y: float, width: float) -> list[Text]:
    """Draw the span's marks; return the captions that go under its box."""
    x, captions = sp.end + width, []
    for kind, label in sp.marks:
        if kind == "commit":
            ax.plot(x, y, "o", ms=15, color="#2E7D32", zorder=3)
            ax.text(x, y, label, ha="center", va="center", fontsize=7, color="white",
                    fontweight="bold", zorder=4)
        elif kind == "error":
            ax.plot(x, y, "X", ms=12, color="#C44E52", zorder=3)
            captions.append(ax.text(x, y - CAPTION_Y, label, ha="center", va="top",
                                    fontsize=7.5, color="#C44E52", fontweight="bold", zorder=4))
        elif kind == "rollback":
            ax.plot(x, y, "o", ms=11, mfc="white", mec="#555555", mew=1.5, zorder=3)
            captions.append(ax.text(x, y - CAPTION_Y, "rollback", ha="center", va="top",
                                    fontsize=7, color="#555555"))
    locks = [lock for kind, lock in sp.marks if kind == "lock"]
    if locks:
        ax.plot(sp.end, y + 0.3, "v", ms=7, color="#333333", zorder=3)
        captions.append(ax.text(sp.end, y - CAPTION_Y, _lock_caption(locks), ha="center",
                                va="top", fontsize=6.5, color="#333333"))
    if sp.heard:  # above the box, and above the "waits for" caption if there is one
        left = sp.start - width
        ax.plot(left, y + 0.3, "D", ms=5, color=HEARD_COLOR, zorder=3)
        ax.text(left, y + (0.52 if sp.wait_from is not None else 0.36), _heard_caption(sp.heard),
                ha="left", va="bottom", fontsize=6.5, color=HEARD_COLOR)
    return captions


def _heard_caption(heard: list[Notice | Notification]) -> str:
    """One line: the notice itself if there is one, else how many; the NOTIFY channels."""
    notices = [h for h in heard if isinstance(h, Notice)]
    channels = [h.channel for h in heard if isinstance(h, Notification)]
    parts = []
    if len(notices) == 1:
        text = f"{notices[0].severity}: {notices[0].message}"
        parts.append(text if len(text) <= 48 else text[:47] + "…")
    elif notices:
        parts.append(f"{len(notices)} notices")
    if channels:
        unique = sorted(set(channels))
        parts.append("NOTIFY " + ", ".join(unique)
                     + (f" ×{len(channels)}" if len(channels) > len(unique) else ""))
    return " · ".join(parts)


CAPTION_Y = 0.34  # data units under the lane's centre where the first caption row starts


def _separate(fig: Figure, captions: list[Text]) -> None:
    """Move captions down, row by row, until none overlaps another label.

    Positions are measured on the Agg canvas after layout, so what is checked is what
    is drawn; a caption that finds no free row keeps its first one (tests catch it).
    """
    if not captions:
        return
    renderer = _renderer(fig)
    placed = [t.get_window_extent(renderer) for t in _labels(fig) if t not in captions]
    for text in sorted(captions, key=lambda t: t.get_position()[0]):
        x, y0 = text.get_position()
        for row in range(4):
            text.set_y(y0 - row * 0.13)
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
        else:
            text.set_y(y0)
            box = text.get_window_extent(renderer)
        placed.append(box)


def _renderer(fig: Figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    root = fig.get_figure(root=True)
    canvas = root.canvas if isinstance(root.canvas, FigureCanvasAgg) else FigureCanvasAgg(root)
    canvas.draw()  # runs the layout: extents are final from here on
    return canvas.get_renderer()


def _labels(fig: Figure) -> list[Text]:
    """Every visible, non-empty text the figure draws."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _lock_caption(locks: list[Lock]) -> str:
    """One line: the tables written, or the rows locked on purpose.

    Next to a write, share locks on other tables come from foreign-key checks; they are
    counted rather than listed, so the caption stays on one line.
    """
    writes = [f"{lk.table} {lk.mode}" for lk in locks if lk.mode == "write"]
    if not writes:
        return "locks: " + ", ".join(f"{lk.table} {lk.mode}" for lk in locks)
    shared = len(locks) - len(writes)
    return "locks: " + ", ".join(writes) + (f", +{shared} share (FK checks)" if shared else "")


def _wrap(text: str, width: int = 120) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def save(results: list[RunResult], path: str, *, wall_clock: bool = False) -> None:
    """One panel per result, stacked, written as PNG (the CLI's --plot)."""
    heights = [1.6 + LANE_HEIGHT_IN * len(r.sessions) + 0.4 for r in results]
    cols = max(len(r.permutation) for r in results)
    fig = Figure(figsize=(max(7.0, 1.15 * cols + 2.2), sum(heights)), layout="constrained")
    for sub, result in zip(fig.subfigures(len(results), 1, height_ratios=heights) if
                           len(results) > 1 else [fig], results):
        timeline(result, sub.add_subplot(), wall_clock=wall_clock)
    fig.savefig(path, dpi=110)
