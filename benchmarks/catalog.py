"""Benchmark: the whole catalog, every case, on both backends, timed.

Prints wall time per scenario and backend and the total [target < 10 s on a 2-core
machine, excluding the embedded server's first start, which is done before timing].
It asserts nothing. The original suite spent about 2 s in sleeps alone.

    python benchmarks/catalog.py
"""

from __future__ import annotations

import time

from lab.runner import Run
from lab.scenarios import SCENARIOS

BACKENDS = ("embedded", "sqlite")


def main() -> None:
    for db in BACKENDS:  # warm up: start the server, build the seeded bases
        Run(SCENARIOS["explicit-locking"], db=db).play()
    total, cases = 0.0, 0
    for db in BACKENDS:
        for scenario in SCENARIOS.values():
            start = time.perf_counter()
            for variant in scenario.variants:
                for level in variant.isolations:
                    Run(scenario, variant.name, isolation=level, db=db).play()
                    cases += 1
            took = time.perf_counter() - start
            total += took
            print(f"{db:<9} {scenario.name:<24} {took * 1000:8.0f} ms")
    print(f"whole catalog: {cases} runs on {len(BACKENDS)} backends in {total:.2f} s"
          " [target < 10 s]")


if __name__ == "__main__":
    main()
