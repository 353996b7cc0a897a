"""The embedded server's lifecycle: leases, stale leases, stale run databases."""

from __future__ import annotations

import os

from lab.db import embedded


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
