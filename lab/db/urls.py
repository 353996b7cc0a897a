"""Which database a run uses, and how to show its URL without its password."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

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


_QUERY_SECRET = re.compile(r"(password=)[^&\s'\"]*", re.IGNORECASE)  # also sslpassword=


def mask(url: URL | str | None) -> str:
    """The URL as text with any password (user part or ?password=) replaced by ***."""
    if url is None:
        return ""
    if isinstance(url, str):
        try:
            url = make_url(_escape_at(url))
        except ArgumentError:
            return _QUERY_SECRET.sub(r"\1***", re.sub(r"(://[^:/@]*:).*@", r"\1***@", url))
    return _QUERY_SECRET.sub(r"\1***", url.render_as_string(hide_password=True))


def scrub(text: str, url: URL | None) -> str:
    """Remove the passwords of `url` from an arbitrary message (driver errors echo DSNs)."""
    if url is None:
        return text
    secrets = [url.password] + [v for k, v in url.query.items() if "password" in k.lower()]
    for secret in secrets:
        for value in (secret if isinstance(secret, tuple) else (secret,)):
            if value:
                text = text.replace(str(value), "***")
    return text


def _escape_at(text: str) -> str:
    """'u:p@ss@host' -> 'u:p%40ss@host': the last @ before the host ends the user part, as
    urllib reads it; unescaped, the driver would take 'ss@host' for the host (and print it)."""
    scheme, sep, rest = text.partition("://")
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0] or [len(rest)])
    netloc, tail = rest[:cut], rest[cut:]
    if not sep or netloc.count("@") < 2:
        return text
    user, _, host = netloc.rpartition("@")
    name, colon, password = user.partition(":")
    return f"{scheme}://{quote(name, safe='%')}{colon}{quote(password, safe='%')}@{host}{tail}"


def resolve(choice: str | None) -> Target:
    """Turn `--db` (or $LAB_DATABASE_URL, or nothing) into a Target, or fail in one line."""
    choice = (choice or os.environ.get(ENV_VAR, "")).strip()
    if choice in ("", "embedded", "postgres", "postgresql"):
        return Target("embedded")
    if choice in SQLITE_MODES:
        return Target("sqlite", journal_mode=SQLITE_MODES[choice])
    try:
        url = make_url(_escape_at(choice))
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
