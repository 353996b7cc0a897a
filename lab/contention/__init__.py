"""The contention study: what each fix costs under real concurrency.

N coordinator threads run free (no conductor) against one run database on the embedded
PostgreSQL, each a loop of the scheduler's two everyday writes, assignment edits and
swap executions, through the lab's services, one strategy at a time (`strategies`).
Each point reports throughput, latency, retries and the invariant violations counted on
the final rows (`load`); pgbench's tpcb-like script on the same server is the anchor
(`pgbench`). ``benchmarks/contention.py`` prints the table; notebook 19 plots it.
"""

from .load import Point, study
from .report import figure, table
from .strategies import STRATEGIES

__all__ = ["Point", "STRATEGIES", "figure", "study", "table"]
