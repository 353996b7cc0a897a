"""Exercises are graded by the lab: a fix against every interleaving, a prediction by a run."""

from __future__ import annotations

import pytest

from lab import exercises
from lab.cli import main
from lab.exercises import Prediction, solutions
from lab.exercises.predict import grade
from lab.runner import Outcome
from lab.scenarios import SCENARIOS

PREDICTIONS = [n for n, s in SCENARIOS.items() if isinstance(s.exercise, Prediction)]


def opposite_order(shifts):
    return shifts  # A locks 3 then 5, B 5 then 3: the naive order


def test_the_naive_lock_order_fails_with_a_deadlock_and_its_replay_line_reproduces_it():
    report = exercises.check("swap-deadlock", opposite_order, db="postgresql",
                             levels=["read committed"])
    assert not report.passed
    (combination,) = report.combinations
    assert combination.exploration.count(Outcome.DEADLOCK) > 0
    first = combination.first_break
    assert first.outcome is Outcome.DEADLOCK and first.detail == "40P01"
    assert report.replay_cli.startswith("python -m lab check swap-deadlock YOUR_FILE.py:lock_order")
    assert "exercises.replay('swap-deadlock', lock_order," in report.replay_python
    again = exercises.replay("swap-deadlock", opposite_order, isolation="read committed",
                             db="postgresql", permutation=" ".join(first.permutation))
    assert "40P01" in again.errors().values()
    assert again.replay.cli.startswith("python -m lab check swap-deadlock")
    assert "FAILED: 1 of 1 combinations break." in repr(report)


def test_the_reference_lock_order_passes_on_both_backends():
    report = exercises.check("swap-deadlock", solutions.lock_order,
                             levels=["read committed"])
    assert report.passed, repr(report)
    assert [c.db for c in report.combinations] == ["postgresql", "sqlite"]
    assert all(c.exploration.count(Outcome.DEADLOCK) == 0 for c in report.combinations)
    assert "PASSED" in repr(report)


def test_every_fix_exercise_has_its_reference_solution():
    for name in exercises.fixes():
        function = SCENARIOS[name].exercise.function
        assert callable(getattr(solutions, function, None)), f"{name}: no solutions.{function}"
    assert len(exercises.fixes()) >= 6


@pytest.mark.parametrize("name", PREDICTIONS)
def test_each_prediction_has_exactly_one_true_choice_and_explains_the_others(name):
    prediction = SCENARIOS[name].exercise
    seen = prediction.observe()  # the real run, played once
    true = [c for c in prediction.choices if c.holds(seen)]
    assert len(true) == 1, f"{name}: {[c.key for c in true]} all match {seen.verdict}"
    for choice in prediction.choices:
        told = repr(grade(prediction, choice.key, seen))
        if choice is true[0]:
            assert told.startswith(f"RIGHT: ({choice.key})") and choice.why in told
        else:
            assert told.startswith(f"NOT ({choice.key}).") and choice.why in told
            assert "what the run shows:" in told and f"verdict: {seen.verdict}" in told


def test_answer_plays_the_run_it_grades():
    graded = exercises.answer("pending-swap", "b")
    assert not graded.correct and graded.right.key == "a"
    assert "errors: b_request: swap-pending" in graded.evidence


def test_a_prediction_refuses_an_unknown_letter_and_a_fix_exercise_name():
    from lab.errors import UsageError

    with pytest.raises(UsageError, match="answer with one of a, b, c"):
        exercises.answer("matcher-queue", "z")
    with pytest.raises(UsageError, match="has no prediction exercise"):
        exercises.answer("on-call-write-skew", "a")
    with pytest.raises(UsageError, match="has no 'write the fix' exercise"):
        exercises.check("matcher-queue", print)


def test_cli_check_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["check", "on-call-write-skew", str(tmp_path / "nope.py:leave_call")]) == 2
    assert "no such file" in capsys.readouterr().err
    mine = tmp_path / "mine.py"
    mine.write_text("def something_else(): pass\n")
    assert main(["check", "on-call-write-skew", f"{mine}:leave_call"]) == 2
    assert "defines no function 'leave_call'" in capsys.readouterr().err
    assert main(["check", "on-call-write-skew", "solution", "--permutation", "a_leave"]) == 2


def test_cli_check_exit_code_says_whether_the_fix_holds(tmp_path, capsys):
    mine = tmp_path / "mine.py"
    mine.write_text("def lock_order(shifts):\n    return shifts\n")
    assert main(["check", "swap-deadlock", f"{mine}:lock_order", "--db", "postgresql",
                 "--isolation", "read committed"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["check", "swap-deadlock", "solution", "--db", "sqlite",
                 "--isolation", "serializable"]) == 0
    assert "PASSED" in capsys.readouterr().out
