"""The embedded server's lifecycle: leases, stale leases, stale run databases."""

from __future__ import annotations

import os

import pytest

from lab.db import embedded, open_run_database, resolve
from lab.db.pg_admin import SCRATCH_MIN_FREE, SCRATCH_ROOT, _free_bytes


def test_this_process_holds_a_lease_while_it_uses_the_server():
    embedded.acquire()
    assert os.getpid() in embedded.live_leases()
    assert embedded.postmaster_pid() is not None


def test_leases_of_dead_processes_are_dropped():
    embedded.acquire()
    ghost = embedded.home() / "leases" / "999999999"
    ghost.write_text("0")
    assert 999999999 not in embedded.live_leases()
    assert not ghost.exists()


def test_server_listens_on_a_unix_socket_only():
    url = embedded.acquire()
    assert "host=/" in url and "localhost" not in url and "127.0.0.1" not in url


@pytest.mark.skipif(not SCRATCH_ROOT.is_dir() or _free_bytes(SCRATCH_ROOT) < SCRATCH_MIN_FREE,
                    reason="no roomy RAM disk on this machine")
def test_run_databases_of_the_embedded_server_live_in_ram():
    db = open_run_database(resolve("embedded"))
    try:
        with db.engine.connect() as conn:
            space, location = conn.exec_driver_sql(
                "SELECT t.spcname, pg_tablespace_location(t.oid) FROM pg_database d"
                " JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = %(n)s",
                {"n": db.name}).one()
    finally:
        db.close()
    assert space == "lab_scratch" and location.startswith(str(SCRATCH_ROOT))
