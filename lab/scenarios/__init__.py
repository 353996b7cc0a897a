"""The catalog: every scenario the lab can play, by name: seed frames 5.1-5.5, then II."""

from __future__ import annotations

from ..errors import UsageError
from ..runner import Scenario
from . import (
    block_capacity_phantom,
    concurrent_edit,
    coverage_report_read_skew,
    double_booking,
    explicit_locking,
    matcher_queue,
    on_call_write_skew,
    read_during_write,
    serializable_retry,
    supervision_ratio,
    swap_deadlock,
    swap_during_generation,
    swap_race,
    task_cancellation,
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (
        concurrent_edit.SCENARIO, explicit_locking.SCENARIO,          # 5.1
        swap_during_generation.SCENARIO,                              # 5.2
        task_cancellation.SCENARIO,                                   # 5.3
        swap_race.SCENARIO, double_booking.DOUBLE_BOOKING,            # 5.4
        double_booking.PENDING_SWAP,
        read_during_write.SCENARIO, swap_deadlock.SCENARIO,           # 5.5
        on_call_write_skew.SCENARIO, block_capacity_phantom.SCENARIO,  # Catalog II
        coverage_report_read_skew.SCENARIO, supervision_ratio.SCENARIO,
        matcher_queue.SCENARIO, serializable_retry.SCENARIO,
    )
}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}"
                         " (python -m lab list)") from None
