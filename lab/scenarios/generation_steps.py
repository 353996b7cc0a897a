"""Steps that drive the schedule generator, shared by frames 5.2 and 5.3.

The generator lives in the session's ``info`` between steps, so each of its phases (start,
a batch, finish) can be a step of its own and other sessions can interleave.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..seed import week_one_plan
from ..services.generation import ScheduleGenerator

BATCH = 13


def start_generation(locked: bool, cooperative: bool):
    def start(s: Session) -> str:
        s.info["gen"] = ScheduleGenerator(s, week_one_plan(), batch_size=BATCH, locked=locked,
                                          cooperative=cooperative)
        return s.info["gen"].start()

    return start


def generator(method: str):
    """A step that calls one phase of the session's generator: write_batch, finish."""
    return lambda s: getattr(s.info["gen"], method)()
