"""The five ways to run the mix, each an edit and a swap written with the lab's services.

An edit appends a mark to an assignment's notes (the whole-form save of frame 5.1); a
swap files a request to hand a faculty shift to another faculty member and executes it
(frame 5.4). Every operation journals what it did in its own transaction, so the
invariants can ask, after the run, whether each committed edit and swap is still true.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from ..models import Assignment
from ..seed import FACULTY, week_one_plan
from ..services import assignments, generation, swaps

EDITED = tuple(range(1, len(week_one_plan()) + 1))  # every assignment of week 1
SWAPPED = tuple(i for i, (_, person, _, _) in enumerate(week_one_plan(), 1) if person in FACULTY)


@dataclass(frozen=True)
class Strategy:
    name: str
    isolation: str
    summary: str
    edit: Callable[[Session, int, str], None]
    swap: Callable[[Session, int, random.Random], str]  # the request's final status


def journal(s: Session, assignment_id: int, mark: str) -> None:
    s.execute(text("INSERT INTO contention_journal (assignment_id, mark) VALUES (:a, :m)"),
              {"a": assignment_id, "m": mark})


def _save_form(s: Session, assignment_id: int, mark: str) -> None:
    """The original save: read the notes, write back what was read plus the mark."""
    notes = s.scalar(select(Assignment.notes).where(Assignment.id == assignment_id))
    s.execute(update(Assignment).where(Assignment.id == assignment_id)
              .values(notes=notes + mark, updated_at=func.current_timestamp()))
    journal(s, assignment_id, mark)


def _target(owner: int, rng: random.Random) -> int:
    return rng.choice([f for f in FACULTY if f != owner])


def _swap_with(execute: Callable[[Session, int], str]) -> Callable[[Session, int, random.Random], str]:
    """File a swap of the shift to another faculty member, then run `execute` on it."""
    def swap(s: Session, assignment_id: int, rng: random.Random) -> str:
        owner = s.get_one(Assignment, assignment_id).person_id
        request = swaps.request_swap(s, assignment_id, None, _target(owner, rng))
        execute(s, request.id)
        return request.status
    return swap


def _locked(hold: Callable[[Session, list[int]], object], action):
    """`action`, after `hold` took its locks on the rows it names."""
    def run(s: Session, assignment_id: int, *rest):
        hold(s, [assignment_id])
        return action(s, assignment_id, *rest)
    return run


def _versioned_edit(s: Session, assignment_id: int, mark: str) -> None:
    loaded = assignments.load_for_edit(s, assignment_id)
    assignments.save_edit(s, loaded, notes=loaded.notes + mark)
    journal(s, assignment_id, mark)


def _versioned_swap(s: Session, assignment_id: int, rng: random.Random) -> str:
    loaded = assignments.load_for_edit(s, assignment_id)
    version = loaded.version
    request = swaps.request_swap(s, assignment_id, None, _target(loaded.person_id, rng))
    swaps.execute_swap_versioned(s, request.id, {assignment_id: version})
    return request.status


def _whole_schedule(s: Session, _ids: list[int]) -> None:
    generation.hold_schedule(s)


NAIVE_SWAP = _swap_with(swaps.execute_swap_naive)
STRATEGIES = {s.name: s for s in (
    Strategy("naive", "read committed", "the original code: no lock, no re-check",
             _save_form, NAIVE_SWAP),
    Strategy("for-update", "read committed",
             "SELECT ... FOR UPDATE in id order, then re-check (execute_swap)",
             _locked(swaps.lock_assignments, _save_form), _swap_with(swaps.execute_swap)),
    Strategy("version", "read committed",
             "version column, compare-and-set; a 409 is retried from a fresh read",
             _versioned_edit, _versioned_swap),
    Strategy("serializable", "serializable",
             "the original code under SERIALIZABLE; 40001 is retried",
             _save_form, NAIVE_SWAP),
    Strategy("advisory", "read committed",
             "the generation lock held exclusively: one writer at a time",
             _locked(_whole_schedule, _save_form), _locked(_whole_schedule, NAIVE_SWAP)),
)}
