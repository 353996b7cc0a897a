"""The two kinds of exercise a race notebook ends with, as a scenario declares them.

A `Fix` asks the learner to write one service function; its `case` builds the race with
that function in place of the service step, so the checker can play it like any other
case. A `Prediction` asks what a run will do; the answer is read from a real run, never
stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..runner.outcome import Outcome

if TYPE_CHECKING:
    from ..explorer import Exploration
    from ..runner import RunResult, Variant

BREAKS = frozenset({Outcome.ANOMALY, Outcome.STUCK})


@dataclass(frozen=True)
class Fix:
    """Write the fix: one function, checked against every feasible interleaving."""

    function: str  # the name the learner's function has in the notebook
    task: str  # what the function must achieve, in one paragraph
    case: Callable[[Callable[..., Any]], Variant]  # the learner's function -> the case to play
    breaks: frozenset[Outcome] = BREAKS  # outcomes that mean the fix does not hold


@dataclass(frozen=True)
class Choice:
    key: str  # "a", "b", ...
    text: str
    holds: Callable[[Any], bool]  # true of the observation when this is what happens
    why: str  # the explanation: why it happens, or why it does not


@dataclass(frozen=True)
class Prediction:
    """Predict what happens; `observe` plays it for real and the true choice is read off."""

    question: str
    choices: tuple[Choice, ...]
    observe: Callable[[], RunResult | Exploration]


Exercise = Fix | Prediction


def play(scenario: str, case: str | None = None, **options: Any) -> Callable[[], RunResult]:
    """What a prediction observes: one run of a catalog case, played when answered."""
    def observe() -> RunResult:
        from ..runner import Run

        return Run(scenario, case, **options).play()

    return observe


def failed_with(code: str, step_prefix: str = "") -> Callable[[RunResult], bool]:
    return lambda r: any(c == code and s.startswith(step_prefix) for s, c in r.errors().items())


def broke(result: RunResult) -> bool:
    return result.verdict is not None and result.verdict.outcome is Outcome.ANOMALY
