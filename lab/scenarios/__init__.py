"""The catalog: every scenario the lab can play, by name."""

from __future__ import annotations

from ..errors import UsageError
from ..runner import Scenario
from . import concurrent_edit, explicit_locking

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (concurrent_edit.SCENARIO, explicit_locking.SCENARIO)
}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}"
                         " (python -m lab list)") from None
