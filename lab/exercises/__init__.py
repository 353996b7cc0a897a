"""Exercises: every race notebook ends with one, graded by the lab itself.

    from lab import exercises
    exercises.check("on-call-write-skew", leave_call)   # write the fix
    exercises.answer("matcher-queue", "b")              # make a prediction

A scenario declares its exercise (``Scenario.exercise``): a `Fix` to write, checked
against every feasible interleaving under every isolation level on PostgreSQL and
SQLite, or a `Prediction`, graded by playing the run it asks about. Reference solutions
live in ``lab.exercises.solutions``: read them after your attempt.
"""

from .checker import Report, check, fixes, replay
from .kinds import Choice, Exercise, Fix, Prediction
from .predict import Graded, Question, answer, question

__all__ = ["Choice", "Exercise", "Fix", "Graded", "Prediction", "Question", "Report",
           "answer", "check", "fixes", "question", "replay"]
