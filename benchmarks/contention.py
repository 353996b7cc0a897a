"""Benchmark: what each fix costs under real concurrency (issue 12, part 4).

N coordinator threads run free against one run database on the embedded PostgreSQL, a
mix of assignment edits (70%) and swap executions (30%) through the lab's services, one
strategy at a time: naive, FOR UPDATE in id order, version column with retry,
SERIALIZABLE with retry, the advisory generation lock. Per strategy and N it prints
throughput, its ratio to pgbench's tpcb-like on the same server at the same N, p50 and
p99 latency, retries and rejections per operation, and the invariant violations counted
on the final rows (0 for every fix; naive, above 1 coordinator, usually more). It
asserts nothing: see docs/concepts/contention.md for the method and its limits.

    python benchmarks/contention.py [--seconds 3] [--clients 1,2,4,8,16]
                                    [--strategies naive,for-update,...] [--plot OUT.png]
"""

from __future__ import annotations

import argparse
import sys

from lab.contention import STRATEGIES, figure, study, table
from lab.contention.report import HEADER, anchor, row
from lab.errors import LabError


def _numbers(text: str) -> list[int]:
    try:
        found = [int(x) for x in text.split(",")]
    except ValueError:
        found = []
    if not found or min(found) < 1 or max(found) > 64:
        raise argparse.ArgumentTypeError(f"{text!r}: a comma-separated list of 1 to 64")
    return found


def _names(text: str) -> list[str]:
    found = text.split(",")
    if unknown := [n for n in found if n not in STRATEGIES]:
        raise argparse.ArgumentTypeError(f"unknown strategy {unknown[0]!r}; choose from "
                                         + ", ".join(STRATEGIES))
    return found


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.2 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds from 0.2 to 600")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # bad input: one line, exit code 2
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def main() -> int:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=_seconds, default=3.0, help="per point (default 3)")
    parser.add_argument("--clients", type=_numbers, default=[1, 2, 4, 8, 16])
    parser.add_argument("--strategies", type=_names, default=list(STRATEGIES))
    parser.add_argument("--plot", metavar="OUT.png", help="save the figure there")
    args = parser.parse_args()
    for name in args.strategies:
        print(f"{name:<13}{STRATEGIES[name].isolation:<16}{STRATEGIES[name].summary}")
    print(f"\n{args.seconds:g} s per point; retries and rejected per finished operation\n")
    print(HEADER, flush=True)
    points, seen = [], set()
    try:
        for p in study(args.strategies, args.clients, args.seconds):
            if p.clients not in seen:
                seen.add(p.clients)
                print(anchor(p))
            print(row(p), flush=True)
            points.append(p)
    except KeyboardInterrupt:
        print("interrupted: every coordinator joined, the run database dropped", file=sys.stderr)
        return 130
    except LabError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    if args.plot:
        figure(points).savefig(args.plot, dpi=110)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
