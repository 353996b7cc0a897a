"""Database backends: where a run's database comes from and how its waits are seen."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from . import embedded
from .pg_admin import prune_stale_run_databases
from .postgres import PostgresRunDatabase
from .protocol import RunDatabase, WaitModel
from .sqlite import SqliteRunDatabase, prune_stale_run_files
from .urls import Target, mask, resolve

_pruned: set[str] = set()


def open_run_database(target: Target) -> RunDatabase:
    """Create a fresh, private database for one run on the chosen backend."""
    if target.kind == "sqlite":
        if "sqlite" not in _pruned:
            prune_stale_run_files()
            _pruned.add("sqlite")
        return SqliteRunDatabase(target.journal_mode)
    if target.kind == "embedded":
        url = embedded.acquire()
        if url not in _pruned:
            prune_stale_run_databases(url)
            _pruned.add(url)
        return PostgresRunDatabase(make_url(url), "embedded PostgreSQL",
                                   scratch=embedded.pgdata())
    return PostgresRunDatabase(target.url, "PostgreSQL")


__all__ = ["RunDatabase", "Target", "WaitModel", "mask", "open_run_database", "resolve",
           "embedded"]
