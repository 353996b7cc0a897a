"""The timeline draws what the trace says: hatched waits, numbered commits, errors."""

from __future__ import annotations

import pytest
from matplotlib.patches import Rectangle

from lab.plot import timeline
from lab.runner import Run
from lab.scenarios import SCENARIOS, get


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_wait_is_hatched_and_names_its_blocker_and_commits_are_numbered():
    r = Run(get("explicit-locking"), db="embedded").play()
    fig = timeline(r)
    hatched = [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert len(hatched) == len(r.waits()) == 1
    texts = _texts(fig)
    assert "waits for A" in texts and "#1" in texts and "#2" in texts
    assert any(t.startswith("locks: assignment FOR UPDATE/SHARE") for t in texts)


def test_errors_are_marked_with_their_code():
    r = Run(get("concurrent-edit"), "whole-object-save", isolation="repeatable read",
            db="embedded").play()
    texts = _texts(timeline(r))
    assert "40001" in texts and "#1" in texts and "#2" not in texts


def test_logical_axis_is_the_same_picture_every_run():
    def picture():
        fig = timeline(Run(get("explicit-locking"), db="sqlite").play())
        return [(type(p).__name__, p.get_x(), p.get_width()) for p in fig.axes[0].patches]

    assert picture() == picture()


def _overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of drawn labels whose boxes overlap, measured on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:]
            if box_a.overlaps(box_b)]


CASES = [(s.name, v.name) for s in SCENARIOS.values() for v in s.variants]


@pytest.mark.parametrize(("scenario", "case"), CASES)
def test_no_two_labels_of_a_catalog_timeline_overlap(scenario, case):
    fig = timeline(Run(get(scenario), case, db="embedded").play())
    assert _overlaps(fig) == []


def test_the_swap_deadlock_lock_captions_no_longer_collide():
    r = Run(get("swap-deadlock"), "opposite-order", db="embedded").play()
    fig = timeline(r)
    captions = [t for t in fig.axes[0].texts if t.get_text().startswith("locks:")]
    assert len(captions) >= 5
    assert _overlaps(fig) == []


def test_the_legend_explains_the_marks_used_and_its_title_is_the_verdict_line():
    r = Run(get("swap-deadlock"), "opposite-order", db="embedded").play()
    legend = timeline(r).legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["waiting for a lock", "commit, #n in commit order", "error, code below",
                      "locks taken, listed below"]
    assert legend.get_title().get_text().replace("\n", " ") == \
        f"verdict: {r.verdict} {r.serial.lines()[0]}"


def test_the_figure_describes_itself_for_alt_text():
    r = Run(get("explicit-locking"), db="embedded").play()
    alt = repr(timeline(r))
    assert alt.startswith(f"Timeline of {r.title}: 6 steps; b_lock waits for A;")
    assert alt.endswith(f"Verdict: {r.verdict}")
