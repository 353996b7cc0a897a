"""Which database a run uses, and how to show its URL without its password."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import UsageError

ENV_VAR = "LAB_DATABASE_URL"
SQLITE_MODES = {"sqlite": "delete", "sqlite-wal": "wal"}


@dataclass(frozen=True)
class Target:
    """A parsed database choice: the embedded server, SQLite, or a PostgreSQL URL."""

    kind: str  # "embedded" | "postgresql" | "sqlite"
    url: URL | None = None
    journal_mode: str = "delete"

    @property
    def label(self) -> str:
        if self.kind == "embedded":
            return "embedded PostgreSQL"
        if self.kind == "sqlite":
            return f"SQLite ({self.journal_mode} journal)"
        return mask(self.url)

    @property
    def cli_arg(self) -> str | None:
        """What `--db` takes to choose this target again (None: the default), no password."""
        if self.kind == "embedded":
            return None
        if self.kind == "sqlite":
            return {v: k for k, v in SQLITE_MODES.items()}[self.journal_mode]
        return mask(self.url)


def mask(url: URL | str | None) -> str:
    """The URL as text with any password replaced by ***."""
    if url is None:
        return ""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    return url.render_as_string(hide_password=True)


def scrub(text: str, url: URL | None) -> str:
    """Remove the password of `url` from an arbitrary message (driver errors echo DSNs)."""
    if url is not None and url.password:
        text = text.replace(str(url.password), "***")
    return text


def resolve(choice: str | None) -> Target:
    """Turn `--db` (or $LAB_DATABASE_URL, or nothing) into a Target, or fail in one line."""
    choice = (choice or os.environ.get(ENV_VAR, "")).strip()
    if choice in ("", "embedded", "postgres", "postgresql"):
        return Target("embedded")
    if choice in SQLITE_MODES:
        return Target("sqlite", journal_mode=SQLITE_MODES[choice])
    try:
        url = make_url(choice)
    except ArgumentError:
        raise UsageError(
            f"malformed database URL {mask(choice)!r}: expected 'sqlite', 'sqlite-wal', "
            "'embedded' or postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
        ) from None
    if url.get_backend_name() != "postgresql":
        raise UsageError(
            f"unsupported database {mask(url)!r}: the lab runs on PostgreSQL or SQLite"
            " ('sqlite' or 'sqlite-wal')"
        )
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return Target("postgresql", url=url)
