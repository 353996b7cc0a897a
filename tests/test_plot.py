"""The timeline draws what the trace says: hatched waits, numbered commits, errors."""

from __future__ import annotations

from matplotlib.patches import Rectangle

from lab.plot import timeline
from lab.runner import Run
from lab.scenarios import get


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
