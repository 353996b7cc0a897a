"""The serial-order check: could the committed transactions have run one after another
and produced exactly this run?

The run's committed transactions are replayed on the same stage, from the same starting
state, one at a time, in every order that keeps each session's program order. The run is
*serializable* if, for some order, every replayed step produces the result it produced
in the run (rows read, rows affected, SQLSTATE) and the final state is the same. Aborted
transactions are left out: their effects rolled back. A spec file's statement run outside
BEGIN is a transaction of its own.

What a Python step returns is compared as its description, unless the step names the
part that is data (`Step.serial_key`): a generated id, a clock value or a commit number
depends on timing, not on the order of the transactions. The error that ended a session's
aborted attempt is given to the replay of its next transaction (`context(s).last_error`),
as the application's except-block saw it; what the aborted attempt kept in `session.info`
is not, since its reads are left out with it.

A replay depends only on its order, so the stage keeps each one (`Stage.replays`): the
explorer replays each order once per case and level, however many interleavings it checks.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import LabError
from .trace import Event, Played, StepResult

MAX_ORDERS = 24  # 4 sessions of one transaction each: 4! orders


class Serializability(StrEnum):
    SERIALIZABLE = "serializable"
    NOT_SERIALIZABLE = "not serializable"
    UNCHECKED = "unchecked"  # past the bound, or a replay that cannot run one at a time


@dataclass(frozen=True)
class Transaction:
    name: str  # the session's name, or session.k when the session committed several
    session: str
    steps: tuple[Played, ...]
    after_error: str | None = None  # the code that ended the session's aborted attempt before


@dataclass(frozen=True)
class SerialCheck:
    """The check's answer: the equivalent order, or why each order differs."""

    status: Serializability
    order: tuple[str, ...] = ()  # the serial order the run is equivalent to
    explanations: tuple[str, ...] = ()  # one per order tried, when none matched
    note: str = ""  # what was left out, or why the check was skipped

    @property
    def serializable(self) -> bool | None:
        return None if self.status is Serializability.UNCHECKED else \
            self.status is Serializability.SERIALIZABLE

    def lines(self) -> list[str]:
        note = f" ({self.note})" if self.note else ""
        if self.status is Serializability.UNCHECKED:
            return [f"serial check: skipped: {self.note}"]
        if self.status is Serializability.NOT_SERIALIZABLE:
            return ["serial check: NOT serializable" + note] + [f"  {x}" for x in self.explanations]
        if not self.order:
            return [f"serial check: nothing committed{note}"]
        return [f"serial check: equivalent to {' -> '.join(self.order)}{note}"]

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class Replayed:
    """One serial order played: each step's result in order, then the final state."""

    results: tuple[StepResult, ...]
    state: Mapping[str, tuple] | None  # None: the replay stopped at a step
    stopped: str = ""  # why: the step would raise, or would wait


Replay = Callable[[Sequence[Transaction]], Replayed]


def transactions(played: Sequence[Played], events: Sequence[Event],
                 sessions: Sequence[str]) -> tuple[list[Transaction], list[str]]:
    """The committed transactions in commit order, and the sessions whose attempts aborted.

    A transaction ends with a step that committed or rolled back, or is an autocommit
    statement; steps skipped after an error belong to the attempt that failed. One still
    open at the end of the run was rolled back then (an ``end`` event); steps left over
    with no transaction open ran no SQL, and count as committed (they changed nothing).
    """
    rolled_back_at_end = {e.session for e in events if e.kind == "end"}
    found: list[tuple[int, Transaction]] = []
    aborted: list[str] = []
    for session in sessions:
        mine = [p for p in played if p.session == session]
        attempts: list[tuple[list[Played], bool]] = []
        current: list[Played] = []
        for p in mine:
            if p.result.skipped and attempts and not attempts[-1][1] and not current:
                attempts[-1][0].append(p)
                continue
            current.append(p)
            r = p.result
            if r.autocommit or r.ended:
                attempts.append((current, r.error is None and r.ended != "rollback"))
                current = []
        if current:
            attempts.append((current, session not in rolled_back_at_end))
        committed = [steps for steps, ok in attempts if ok]
        error = None
        k = 0
        for steps, ok in attempts:
            if not ok:
                aborted.append(session)
                error = next((p.result.error.code for p in steps if p.result.error), None)
                continue
            k += 1
            name = session if len(committed) == 1 else f"{session}.{k}"
            found.append((steps[-1].at, Transaction(name, session, tuple(steps), error)))
            error = None
    return [t for _, t in sorted(found, key=lambda x: x[0])], aborted


def count_orders(committed: Sequence[Transaction]) -> int:
    """Orders that keep each session's program order: a multinomial coefficient."""
    per_session: dict[str, int] = {}
    for t in committed:
        per_session[t.session] = per_session.get(t.session, 0) + 1
    total = math.factorial(len(committed))
    for n in per_session.values():
        total //= math.factorial(n)
    return total


def orders(committed: Sequence[Transaction],
           sessions: Sequence[str]) -> Iterator[tuple[Transaction, ...]]:
    """The commit order first (most runs equal it), then every other, sessions in order."""
    first = tuple(committed)
    yield first
    queues = [q for q in ([t for t in committed if t.session == s] for s in sessions) if q]

    def walk(prefix: tuple[Transaction, ...], taken: tuple[int, ...]):
        if len(prefix) == len(committed):
            if prefix != first:
                yield prefix
            return
        for i, queue in enumerate(queues):
            if taken[i] < len(queue):
                yield from walk(prefix + (queue[taken[i]],),
                                taken[:i] + (taken[i] + 1,) + taken[i + 1:])

    yield from walk((), (0,) * len(queues))


def check(played: Sequence[Played], events: Sequence[Event], sessions: Sequence[str],
          state: Mapping[str, tuple], replay: Replay) -> SerialCheck:
    """Judge a finished run: `played` and `events` are its record, `state` its final
    state, `replay` plays a serial order on its stage (see `replayer`)."""
    inside = next((p.step for p in played if p.result.commits_inside), None)
    if inside is not None:
        return SerialCheck(Serializability.UNCHECKED, note=(
            f"step {inside} commits inside its own code, so the run's transaction"
            " boundaries are not all steps; the check needs COMMIT as a step of its own"))
    committed, aborted = transactions(played, events, sessions)
    left_out = _left_out(aborted)
    if not committed:
        return SerialCheck(Serializability.SERIALIZABLE, note=left_out)
    n = count_orders(committed)
    if n > MAX_ORDERS:
        return SerialCheck(Serializability.UNCHECKED, note=(
            f"{len(committed)} committed transactions have {n} serial orders, more than"
            f" the {MAX_ORDERS} the check replays"))
    single = f"the only committed transaction; {left_out}" \
        if len(committed) == 1 and left_out else ""
    explanations = []
    for order in orders(committed, sessions):
        try:
            replayed = replay(order)
        except LabError as exc:
            return SerialCheck(Serializability.UNCHECKED, note=f"the replay failed: {exc}")
        why = _difference(order, replayed, state)
        if why is None:
            return SerialCheck(Serializability.SERIALIZABLE, tuple(t.name for t in order),
                               note=single)
        explanations.append(f"in {' -> '.join(t.name for t in order)}, {why}")
    return SerialCheck(Serializability.NOT_SERIALIZABLE, explanations=tuple(explanations),
                       note=single)


def replay_key(scenario: str, case: str, order: Sequence[Transaction]) -> tuple:
    """What a replay depends on: the same key always replays the same."""
    return (scenario, case) + tuple((t.session, tuple(p.step for p in t.steps), t.after_error)
                                    for t in order)


def _left_out(aborted: list[str]) -> str:
    """'B's aborted transaction is left out', or 'aborted and left out: B (2), C'."""
    if not aborted:
        return ""
    if len(aborted) == 1:
        return f"{aborted[0]}'s aborted transaction is left out"
    counts = {s: aborted.count(s) for s in aborted}
    return "aborted and left out: " + ", ".join(
        f"{s} ({n})" if n > 1 else s for s, n in counts.items())


def _difference(order: Sequence[Transaction], replayed: Replayed,
                state: Mapping[str, tuple]) -> str | None:
    """The first step whose replayed result differs, or the final state; None if none."""
    steps = [p for t in order for p in t.steps]
    for p, again in zip(steps, replayed.results):
        if compared(again) != compared(p.result):
            return f"{p.step} {said(again, True)}; here it {said(p.result, False)}"
    if len(replayed.results) < len(steps):
        p = steps[len(replayed.results)]
        return f"{p.step} {replayed.stopped}; here it {said(p.result, False)}"
    for label, rows in state.items():
        again = replayed.state.get(label, ())
        if tuple(again) != tuple(rows):
            where = f" of {label}" if label else ""
            return (f"the final state{where} would be {_rows(again)}; here it is"
                    f" {_rows(rows)}")
    return None


def compared(r: StepResult) -> tuple:
    """A step's result as the check compares it: rows read, rows affected, SQLSTATE."""
    code = r.error.code if r.error else None
    if r.key is not None:
        return (code, r.key)
    return (code, r.text if r.rows is None and not r.results else "", r.rows, r.rowcount,
            tuple((rs.columns, rs.rows) for rs in r.results))


def said(r: StepResult, would: bool) -> str:
    """'would read (1, 11)' / 'read (1, 10)': what a result says, for an explanation."""
    if r.error is not None:
        return f"would fail with {r.error.code}" if would else f"failed with {r.error.code}"
    rows = [row for rs in r.results for row in rs.rows] if r.results else r.rows
    if rows is not None and r.key is None:
        shown = _rows(rows)
        return f"would read {shown}" if would else f"read {shown}"
    if r.rowcount is not None and r.key is None:
        n = f"{r.rowcount} row{'s' if r.rowcount != 1 else ''}"
        return f"would affect {n}" if would else f"affected {n}"
    shown = repr(r.text) if r.text else "nothing"
    return f"would return {shown}" if would else f"returned {shown}"


def _rows(rows: Sequence[Any]) -> str:
    if not rows:
        return "no rows"
    return ", ".join(_row(r) for r in rows)


def _row(row: Any) -> str:
    values = row.values() if isinstance(row, Mapping) else row
    return "(" + ", ".join("NULL" if v is None else str(v) for v in values) + ")"


def replayer(run: Any) -> Replay:
    """Replays on the run's own stage, each order once (the stage keeps them)."""

    def replay(order: Sequence[Transaction]) -> Replayed:
        key = replay_key(run.scenario.name, run.variant.name, order)
        if key not in run.stage.replays:
            run.stage.replays[key] = _replay(run, order)
        return run.stage.replays[key]

    return replay


def _replay(run: Any, order: Sequence[Transaction]) -> Replayed:
    """Play `order` on the run's stage, one transaction after another, with the Run engine."""
    from .conductor import Run

    again = Run(run.scenario, run.variant.name, isolation=run.isolation, stage=run.stage,
                timeout=run.timeout, track_locks=False, serial_check=False, free_order=True)
    stopped = ""
    for t in order:
        if t.after_error:  # what the application's except-block saw, as in the run
            run.stage.contexts[t.session].last_error = t.after_error
        for p in t.steps:
            try:
                again.step(p.step)
            except LabError:
                raise
            except Exception as exc:  # the step's own code: say, a notepad entry that
                stopped = f"would raise {type(exc).__name__}: {exc}"  # an aborted attempt set
                break
            if again.schedule.waiting:
                blockers = [e.blockers for e in again.events if e.kind == "wait"][-1]
                stopped = f"would wait for {', '.join(blockers)}, even one at a time"
                break
        if stopped:
            break
    results = tuple(p.result for p in again.played)
    if stopped:
        with contextlib.suppress(LabError):
            again.final_state()
        return Replayed(results, None, stopped)
    return Replayed(results, again.final_state())
