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


def test_a_ram_folder_is_fresh_and_its_parent_is_ours(tmp_path, monkeypatch):
    from lab.db import pg_admin
    monkeypatch.setattr(pg_admin, "SCRATCH_ROOT", tmp_path)
    parent = tmp_path / f"race-lab-{os.geteuid()}"
    parent.mkdir(mode=0o710)  # left by an older lab: the server could not get through
    server = os.stat(tmp_path)
    first, second = (pg_admin._scratch_folder(server) for _ in range(2))
    assert first.parent == parent and first != second and not any(first.iterdir())
    assert parent.stat().st_mode & 0o777 == 0o700  # the server runs as this user here


def test_a_ram_parent_we_did_not_make_is_not_used(tmp_path, monkeypatch):
    from lab.db import pg_admin
    monkeypatch.setattr(pg_admin, "SCRATCH_ROOT", tmp_path)
    elsewhere = tmp_path / "planted"
    elsewhere.mkdir()
    (tmp_path / f"race-lab-{os.geteuid()}").symlink_to(elsewhere)
    assert pg_admin._scratch_folder(os.stat(tmp_path)) is None
    assert not any(elsewhere.iterdir())
