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
    totals: dict[str, float] = {"Catalog I (frames 5.1-5.5)": 0.0, "Catalog II": 0.0}
    runs = 0
    for db in BACKENDS:
        for scenario in SCENARIOS.values():
            start = time.perf_counter()
            for variant in scenario.variants:
                # SQLite has no isolation levels to choose: one run per case is all it has
                levels = variant.isolations if db == "embedded" else variant.isolations[:1]
                for level in levels:
                    Run(scenario, variant.name, isolation=level, db=db).play()
                    runs += 1
            took = time.perf_counter() - start
            totals["Catalog II" if scenario.frame == "II" else "Catalog I (frames 5.1-5.5)"] \
                += took
            print(f"{db:<9} {scenario.name:<26} {took * 1000:8.0f} ms")
    for label, took in totals.items():
        print(f"{label}: {took:.2f} s on both backends" +
              (" [target < 10 s]" if label.startswith("Catalog I ") else ""))
    print(f"everything: {runs} runs in {sum(totals.values()):.2f} s")


if __name__ == "__main__":
    main()
