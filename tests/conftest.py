"""Shared fixtures. The embedded PostgreSQL is stopped when the test session ends (unless
another lab process, say an open JupyterLab, still uses it)."""

from __future__ import annotations

import threading

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
