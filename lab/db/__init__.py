"""Database backends: where a run's database comes from and how its waits are seen."""

from __future__ import annotations

import weakref

from sqlalchemy.engine import make_url

from . import embedded
from .pg_admin import tidy
from .postgres import PostgresRunDatabase
from .protocol import RunDatabase, WaitModel
from .sqlite import SqliteRunDatabase, prune_stale_run_files
from .urls import Target, mask, resolve

_pruned: set[str] = set()
_open: weakref.WeakSet[RunDatabase] = weakref.WeakSet()


def open_run_database(target: Target) -> RunDatabase:
    """Create a fresh, private database for one run on the chosen backend."""
    if target.kind == "sqlite":
        if "sqlite" not in _pruned:
            prune_stale_run_files()
            _pruned.add("sqlite")
        db: RunDatabase = SqliteRunDatabase(target.journal_mode)
    elif target.kind == "embedded":
        url = embedded.acquire()
        if url not in _pruned:
            tidy(url)
            _pruned.add(url)
        db = PostgresRunDatabase(make_url(url), "embedded PostgreSQL", scratch=embedded.pgdata())
    else:
        db = PostgresRunDatabase(target.url, "PostgreSQL")
    _open.add(db)
    return db


def open_names() -> list[str]:
    """The run databases this process has open now."""
    return sorted(db.name for db in list(_open) if not db.closed)


def close_all() -> list[str]:
    """Drop the run databases still open (an interrupted run); those that could not be."""
    failed = []
    for db in list(_open):
        if not db.closed:
            try:
                db.close()
            except Exception:
                failed.append(db.name)
    return sorted(failed)


__all__ = ["RunDatabase", "Target", "WaitModel", "close_all", "embedded", "mask",
           "open_names", "open_run_database", "resolve"]
