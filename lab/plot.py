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
from matplotlib.patches import Rectangle

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


def timeline(result: RunResult, ax: Axes | None = None, *, wall_clock: bool = False) -> Figure:
    """Draw `result` on `ax` (or a new figure) and return the figure."""
    sessions = list(result.sessions)
    if ax is None:
        fig = Figure(figsize=(max(7.0, 1.15 * len(result.permutation) + 2.2),
                              1.1 + 0.95 * len(sessions)), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    lane = {s: len(sessions) - 1 - i for i, s in enumerate(sessions)}
    width = HALF if not wall_clock else 0.0
    for sp in _spans(result, wall_clock):
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
        ax.text(sp.start if sp.wait_from is None else sp.start, y, sp.step, ha="center",
                va="center", fontsize=8, color="white" if sp.wait_from is None else "#222222",
                fontweight="bold")
        _marks(ax, sp, y, width)
    n = len(result.permutation)
    ax.set_yticks(range(len(sessions)), [f"session {s}" for s in reversed(sessions)])
    ax.set_ylim(-0.75, len(sessions) - 0.25)
    if wall_clock:
        ax.set_xlabel("milliseconds since the run started (varies run to run)")
        ax.autoscale(axis="x")
    else:
        ax.set_xlim(-0.7, max(n, 1) - 0.3)
        ax.set_xticks(range(n), [f"{i + 1}" for i in range(n)])
        ax.set_xlabel("step order (the conductor's permutation)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    verdict = result.verdict
    ax.set_title(f"{result.scenario} · {result.case} · {result.isolation.upper()} · "
                 f"{result.backend}", fontsize=10, loc="left")
    if verdict is not None:  # the invariant's verdict, then the serial check's first line
        text = "\n".join(_wrap(line) for line in [str(verdict)] + (
            result.serial.lines()[:1] if result.serial else []))
        fig.text(0.01, 0.005, text, fontsize=8.5, va="bottom",
                 color=OUTCOME_COLORS[verdict.outcome])
        fig.get_layout_engine().set(h_pad=0.35 + 0.12 * text.count("\n"))
    return fig


def _marks(ax: Axes, sp: _Span, y: float, width: float) -> None:
    x = sp.end + width
    for kind, label in sp.marks:
        if kind == "commit":
            ax.plot(x, y, "o", ms=15, color="#2E7D32", zorder=3)
            ax.text(x, y, label, ha="center", va="center", fontsize=7, color="white",
                    fontweight="bold", zorder=4)
        elif kind == "error":
            ax.plot(x, y, "X", ms=12, color="#C44E52", zorder=3)
            ax.text(x + 0.12, y - 0.12, label, ha="left", va="top", fontsize=7.5,
                    color="#C44E52", fontweight="bold", zorder=4)
        elif kind == "rollback":
            ax.plot(x, y, "o", ms=11, mfc="white", mec="#555555", mew=1.5, zorder=3)
            ax.text(x, y - 0.42, "rollback", ha="center", va="top", fontsize=7, color="#555555")
    locks = [lock for kind, lock in sp.marks if kind == "lock"]
    if locks:
        ax.plot(sp.end, y + 0.3, "v", ms=7, color="#333333", zorder=3)
        ax.text(sp.end, y - 0.36, _lock_caption(locks), ha="center", va="top",
                fontsize=6.5, color="#333333")
    if sp.heard:  # above the box, and above the "waits for" caption if there is one
        left = sp.start - width
        ax.plot(left, y + 0.3, "D", ms=5, color=HEARD_COLOR, zorder=3)
        ax.text(left, y + (0.52 if sp.wait_from is not None else 0.36), _heard_caption(sp.heard),
                ha="left", va="bottom", fontsize=6.5, color=HEARD_COLOR)


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
    heights = [1.1 + 0.95 * len(r.sessions) + 0.4 for r in results]
    cols = max(len(r.permutation) for r in results)
    fig = Figure(figsize=(max(7.0, 1.15 * cols + 2.2), sum(heights)), layout="constrained")
    for sub, result in zip(fig.subfigures(len(results), 1, height_ratios=heights) if
                           len(results) > 1 else [fig], results):
        timeline(result, sub.add_subplot(), wall_clock=wall_clock)
    fig.savefig(path, dpi=110)
