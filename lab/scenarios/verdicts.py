"""The verdict most invariants share: broken, or held by an abort, by waiting, or freely."""

from __future__ import annotations

from ..runner import RunResult, Verdict


def failures(result: RunResult) -> str:
    return ", ".join(f"{step} failed with {code}" for step, code in result.errors().items())


def judged(result: RunResult, anomaly: str | None, state: str) -> Verdict:
    """`anomaly`: what broke (None if the invariant held); `state`: what the rows say."""
    if anomaly:
        return Verdict("anomaly", anomaly)
    if result.errors():
        return Verdict("prevented-by-abort", f"{failures(result)}; {state}")
    return Verdict("prevented-by-waiting" if result.waits() else "fine", state)
