"""Prediction exercises: ask what a run will do, then play it and grade the answer.

The right choice is never stored: `answer` plays the run (or exploration) the question is
about and takes the one choice whose condition is true of what really happened. A wrong
answer gets that choice's explanation and the evidence from the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RunFailed, UsageError
from ..explorer import Exploration, summary
from ..runner import RunResult
from .kinds import Choice, Prediction


def prediction_of(name: str) -> Prediction:
    from ..scenarios import SCENARIOS, get

    exercise = get(name).exercise
    if not isinstance(exercise, Prediction):
        raise UsageError(f"{name!r} has no prediction exercise; those that do: " + ", ".join(
            n for n, s in SCENARIOS.items() if isinstance(s.exercise, Prediction)))
    return exercise


@dataclass(frozen=True)
class Question:
    name: str
    prediction: Prediction

    def __repr__(self) -> str:
        p = self.prediction
        choices = sorted(p.choices, key=lambda c: c.key)
        return "\n".join([p.question, *(f"  ({c.key}) {c.text}" for c in choices),
                          f'answer with: exercises.answer("{self.name}", "a")'])


def question(name: str) -> Question:
    """The question and its choices."""
    return Question(name, prediction_of(name))


@dataclass(frozen=True)
class Graded:
    given: str
    right: Choice
    evidence: str
    chosen: Choice

    @property
    def correct(self) -> bool:
        return self.given == self.right.key

    def __repr__(self) -> str:
        if self.correct:
            return f"RIGHT: ({self.right.key}) {self.right.text}\n{self.right.why}\n\n" \
                   f"what the run shows:\n{self.evidence}"
        lines = [f"NOT ({self.given}).", f"({self.chosen.key}) {self.chosen.text}: {self.chosen.why}"]
        lines += ["", "what the run shows:", self.evidence, "",
                  "Think again, then try another letter."]
        return "\n".join(lines)


def answer(name: str, key: str) -> Graded:
    """Grade `key` against what really happens: the run is played now."""
    prediction = prediction_of(name)
    given = _key(prediction, key)
    return grade(prediction, given, prediction.observe())


def grade(prediction: Prediction, key: str, seen: RunResult | Exploration) -> Graded:
    """Grade `key` against `seen`, what the run did: exactly one choice must be true of it."""
    true = [c for c in prediction.choices if c.holds(seen)]
    if len(true) != 1:
        raise RunFailed(f"{len(true)} choices match what the run did, not one; the"
                        f" exercise needs fixing ({evidence(seen)})")
    chosen = next(c for c in prediction.choices if c.key == key)
    return Graded(key, true[0], evidence(seen), chosen)


def _key(prediction: Prediction, key: str) -> str:
    keys = [c.key for c in prediction.choices]
    given = str(key).strip().lower().strip("()")
    if given not in keys:
        raise UsageError(f"answer with one of {', '.join(keys)}, not {key!r}")
    return given


def evidence(seen: RunResult | Exploration) -> str:
    if isinstance(seen, Exploration):
        return summary([seen]).split("\n\n", 1)[1].rstrip("\n")
    waits = "; ".join(f"{step} waited for {', '.join(by)}" for step, by in seen.waits())
    errors = ", ".join(f"{step}: {code}" for step, code in seen.errors().items())
    return "\n".join([seen.title, f"verdict: {seen.verdict}",
                      f"waits: {waits or 'none'}", f"errors: {errors or 'none'}",
                      f"commit order: {', '.join(seen.commit_order()) or 'nobody committed'}"])
