"""The anchor: pgbench's built-in tpcb-like script on the same server, at the same N.

pgbench ships next to the wheel's ``postgres``. It runs in a database of its own (scale
1: 100,000 accounts, initialised once per study) in the run database's tablespace, so
both sides write to the same storage; the database is dropped at the end.
"""

from __future__ import annotations

import os
import re
import subprocess

from sqlalchemy import text

from ..db import RunDatabase
from ..db.pg_admin import engine
from ..db.pg_server import bin_dir
from ..errors import LabError

SCALE = 1
TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)


class Pgbench:
    """``with Pgbench(db) as bench: bench.tps(4, 3.0)``; the database goes with the block."""

    def __init__(self, db: RunDatabase):
        self.url, self.name = db.url, f"{db.name}_pgbench"
        self._admin = engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        self._home = db.name

    def __enter__(self) -> Pgbench:
        with self._admin.connect() as conn:
            space = conn.execute(text(
                "SELECT t.spcname FROM pg_database d JOIN pg_tablespace t"
                " ON t.oid = d.dattablespace WHERE d.datname = :n"), {"n": self._home}).scalar_one()
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}" TABLESPACE "{space}"')
        try:
            self._run("-i", "-q", "-s", str(SCALE))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        try:
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            self._admin.dispose()

    def tps(self, clients: int, seconds: float) -> float:
        """tps of ``pgbench -c clients -T seconds`` (tpcb-like), connection time excluded."""
        out = self._run("-n", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
                        "-T", str(max(1, round(seconds))))
        match = TPS.search(out)
        if match is None:
            raise LabError(f"pgbench printed no tps line: {out.strip().splitlines()[-1:]}")
        return float(match.group(1))

    def _run(self, *args: str) -> str:
        port = str(self.url.port or self.url.query.get("port", 5432))
        done = subprocess.run([str(bin_dir() / "pgbench"), "-h", self.url.query["host"],
                               "-p", port, "-U", self.url.username, *args, self.name],
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise LabError(f"pgbench {' '.join(args)} failed: "
                           + (done.stderr.strip().splitlines() or ["no message"])[-1])
        return done.stdout
