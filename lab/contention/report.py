"""The study's table and its figure: throughput and retries against N, per strategy."""

from __future__ import annotations

from collections.abc import Sequence

from ..plot import PALETTE, Described
from .load import Point

HEADER = (f"{'strategy':<13}{'N':>3}{'ops/s':>9}{'x pgbench':>11}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'retries':>9}{'rejected':>10}{'gave up':>9}{'violations':>12}")


def row(p: Point) -> str:
    ratio = f"{p.throughput / p.pgbench_tps:.2f}" if p.pgbench_tps else "-"
    broken = ", ".join(f"{v} {k}" for k, v in p.violations.items() if v) or "0"
    return (f"{p.strategy:<13}{p.clients:>3}{p.throughput:>9.0f}{ratio:>11}"
            f"{p.latency_ms(0.5):>9.2f}{p.latency_ms(0.99):>9.2f}{p.retry_rate:>9.1%}"
            f"{p.rejected / max(p.ops, 1):>10.1%}{p.given_up:>9}  {broken}")


def anchor(p: Point) -> str:
    return f"{'pgbench':<13}{p.clients:>3}{p.pgbench_tps:>9.0f}{'1.00':>11}  (tpcb-like)"


def table(points: Sequence[Point]) -> str:
    """One row per point, pgbench's own row first at each N."""
    lines, seen = [HEADER], set()
    for p in points:
        if p.pgbench_tps and p.clients not in seen:
            seen.add(p.clients)
            lines.append(anchor(p))
        lines.append(row(p))
        lines += [f"    {e}" for e in p.errors]
    return "\n".join(lines)


def figure(points: Sequence[Point]) -> Described:
    """Throughput (left) and retries per operation (right) against N, a line per strategy."""
    fig = Described(figsize=(10, 3.8), layout="constrained")
    speed, retries = fig.subplots(1, 2)
    strategies = list(dict.fromkeys(p.strategy for p in points))
    for color, name in zip(PALETTE, strategies):
        mine = [p for p in points if p.strategy == name]
        ns = [p.clients for p in mine]
        speed.plot(ns, [p.throughput for p in mine], "o-", color=color, label=name)
        retries.plot(ns, [100 * p.retry_rate for p in mine], "o-", color=color, label=name)
    anchors = {p.clients: p.pgbench_tps for p in points if p.pgbench_tps}
    if anchors:
        speed.plot(list(anchors), list(anchors.values()), "k--", label="pgbench tpcb-like")
    for ax, what in ((speed, "operations per second"), (retries, "retries per operation (%)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({p.clients for p in points}), labels=[str(n) for n in sorted(
            {p.clients for p in points})])
        ax.set_xlabel("coordinators (N)")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    speed.set_yscale("log")
    speed.legend(fontsize=8)
    fig.alt = ("Two line charts against the number of coordinators N: throughput in operations"
               " per second (log scale, pgbench's tpcb-like as a dashed line) and retries per"
               " operation in percent, one line per strategy: " + ", ".join(strategies) + ".")
    return fig
