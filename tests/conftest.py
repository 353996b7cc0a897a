"""Shared fixtures. The embedded PostgreSQL is stopped when the test session ends (unless
another lab process, say an open JupyterLab, still uses it)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.db import embedded

PG, SQLITE = "embedded", "sqlite"


@pytest.fixture(params=[PG, SQLITE])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker; the controller cleans up
        return
    embedded.stop_if_unused()
    stray = [t.name for t in threading.enumerate() if t.name.startswith("lab-session-")]
    if stray:
        print(f"\nlab threads still running after the tests: {stray}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def anomaly_matrix(tmp_path_factory: pytest.TempPathFactory):
    """The whole catalog explored once per test session, on both backends; the docs build
    embeds this very run (LAB_MATRIX_DIR), so the published matrix is never typed in."""
    from lab import matrix
    from lab.db import resolve

    built = matrix.build([resolve(PG), resolve(SQLITE)])
    folder = tmp_path_factory.mktemp("matrix")
    matrix.write(built, str(folder))
    return built, folder


@dataclass(frozen=True)
class BuiltSite:
    path: Path
    seconds: float  # how long `mkdocs build --strict` took
    log: str


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory, anomaly_matrix) -> BuiltSite:
    """The docs site, built once per session with --strict, as the docs workflow builds it,
    around this session's own anomaly matrix."""
    _built, folder = anomaly_matrix
    site = tmp_path_factory.mktemp("site") / "site"
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "LAB_MATRIX_DIR": str(folder)},
    )
    seconds = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    print(f"\nmkdocs build --strict: {seconds:.1f} s")
    return BuiltSite(site, seconds, out.stderr)
