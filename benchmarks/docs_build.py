"""Benchmark: how long the docs build takes, the way the tests and the docs workflow run it.

`mkdocs build --strict` with a ready anomaly matrix ($LAB_MATRIX_DIR, as the test session
provides). Target: under 60 s on a 2-core machine. It prints numbers and asserts nothing.

    LAB_MATRIX_DIR=build/matrix python benchmarks/docs_build.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    if not os.environ.get("LAB_MATRIX_DIR"):
        print("LAB_MATRIX_DIR is not set: the build runs the whole matrix first (minutes)")
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", out],
                       cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
        seconds = time.monotonic() - started
        pages = len(list(Path(out).rglob("index.html")))
    print(f"mkdocs build --strict: {seconds:.1f} s for {pages} pages")


if __name__ == "__main__":
    main()
