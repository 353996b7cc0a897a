"""Shared fixtures. The embedded PostgreSQL is stopped when the test session ends (unless
another lab process, say an open JupyterLab, still uses it)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.db import embedded

PG, SQLITE = "embedded", "sqlite"


@pytest.fixture(params=[PG, SQLITE])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


# The anomaly matrix is the session's longest piece of work (minutes, in one process): the
# file that builds it goes first, so that one xdist worker builds it while the other runs
# the rest, and the files that only read it (and the site built around it) go last,
# instead of a worker sitting idle on the lock while the matrix is built.
FIRST, LAST = ("test_matrix.py",), ("test_docs.py", "test_site_browser.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return 0 if name in FIRST else 2 if name in LAST else 1

    items.sort(key=rank)  # stable: each file keeps its own order


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker; the controller cleans up
        return
    embedded.stop_if_unused()


@pytest.fixture(scope="session", autouse=True)
def no_stray_threads() -> Iterator[None]:
    """After the last test of this process (each xdist worker's too): no session thread
    of the lab is left running. A failure here is an error of the session's last test."""
    yield
    stray = [t.name for t in threading.enumerate() if t.name.startswith("lab-session-")]
    if stray:
        pytest.fail(f"lab threads still running after the tests: {stray}")


@contextlib.contextmanager
def _session_folder(factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """A folder this test session makes once, whichever xdist worker asks first: the
    others wait for it (a lock file beside it) and use what it made. Yields (folder,
    True if the caller must fill it)."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this session's folder, shared by its workers (and no other)
    folder = base / name
    with open(base / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = folder / ".done"
        if not done.exists():
            folder.mkdir(exist_ok=True)
            yield folder, True
            done.touch()
        else:
            yield folder, False


@pytest.fixture(scope="session")
def anomaly_matrix(tmp_path_factory: pytest.TempPathFactory):
    """The whole catalog explored once per test session, on both backends; the docs build
    embeds this very run (LAB_MATRIX_DIR), so the published matrix is never typed in.

    On two explorer workers, beside the other xdist worker: a busy machine can make a
    deadlock's first waiter check before the cycle closes, and the explorer then plays
    that interleaving again with longer timers (docs/concepts/conductor.md)."""
    from lab import matrix
    from lab.db import resolve

    with _session_folder(tmp_path_factory, "matrix") as (folder, fill):
        if fill:
            built = matrix.build([resolve(PG), resolve(SQLITE)], workers=2)
            matrix.write(built, str(folder))
            (folder / "matrix.pickle").write_bytes(pickle.dumps(built))
        built = pickle.loads((folder / "matrix.pickle").read_bytes())
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
    _built, matrix_folder = anomaly_matrix
    with _session_folder(tmp_path_factory, "site") as (folder, fill):
        site, record = folder / "site", folder / "build.json"
        if fill:
            started = time.monotonic()
            out = subprocess.run(
                [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1",
                                  "LAB_MATRIX_DIR": str(matrix_folder)})
            assert out.returncode == 0, out.stderr
            record.write_text(json.dumps({"seconds": time.monotonic() - started,
                                          "log": out.stderr}))
        built = json.loads(record.read_text())
    print(f"\nmkdocs build --strict: {built['seconds']:.1f} s")
    return BuiltSite(site, built["seconds"], built["log"])
