"""The seeded base every run's database is copied from.

Creating the tables and seeding the schedule costs more than copying them, so each
backend keeps one seeded *base* per version of the schema and seed (the fingerprint)
and gives each run a copy: ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL, a file copy on
SQLite.
"""

from __future__ import annotations

import functools
import hashlib
import inspect

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from .. import models, seed


@functools.cache
def fingerprint() -> str:
    source = inspect.getsource(models) + inspect.getsource(seed)
    return hashlib.sha1(source.encode()).hexdigest()[:12]


def build(engine: Engine) -> None:
    models.Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        seed.seed_schedule(session)
