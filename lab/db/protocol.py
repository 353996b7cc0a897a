"""What the runner needs from a backend: a run database and its wait model.

A backend differs in how a run's database is made and reset, and above all in how a
wait is *seen*: PostgreSQL names the blocker (``pg_blocking_pids``); SQLite's busy handler
only says that a session waits. Both answer the same questions, so the conductor holds
no backend branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Engine


@dataclass(frozen=True)
class Lock:
    """A table-level mark of row locks a step took: `mode` is "write" or "FOR UPDATE/SHARE"."""

    table: str
    mode: str

    def __str__(self) -> str:
        return f"{self.table} ({self.mode})"


class WaitModel(Protocol):
    def register(self, session: str, conn: Connection) -> int | None:
        """Watch a session's connection; its backend pid, where the server has one."""

    def launching(self, session: str) -> None:
        """A step of `session` is about to start."""

    def blockers(self, sessions: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Who each session waits for now (empty: it does not wait)."""

    def settled(self, sessions: list[str]) -> bool:
        """Every one of these waiting sessions stays blocked by what the run holds."""

    def moved(self) -> None:
        """The conductor made a move (launched, drained, ended a transaction)."""

    def released(self) -> bool:
        """A waiter finished. True: the others must look again before they count as settled."""

    def queued_behind(self, session: str, blockers: tuple[str, ...],
                      waiting: Iterable[str]) -> bool:
        """`session` queues for a lock another waiter is first in line for."""

    def stagger(self, session: str, rank: int, base_ms: int
                ) -> Callable[[Connection], None] | None:
        """What to run before a step so that the first waiter is the deadlock victim."""

    def cycle(self) -> frozenset[str]:
        """The waiters in a wait cycle when `settled` last said no: only the server's
        deadlock detector can break it (empty: none)."""

    def ended(self, session: str, rolled_back: bool) -> None:
        """A transaction of `session` ended."""

    def restore(self, session: str) -> Callable[[Connection], None] | None:
        """Between runs on one stage: what puts the session's settings back."""

    def new_locks(self, session: str) -> list[Lock]:
        """Row locks `session` gained since last asked (empty where not observable)."""

    def forget(self, session: str) -> None: ...

    def close(self) -> None: ...


class RunDatabase(Protocol):
    label: str
    name: str  # the run database's (PostgreSQL) or its folder's (SQLite) name
    kind: str  # "postgresql" | "sqlite": which of a step's notes applies
    closed: bool  # dropped (close() finished)
    engine: Engine
    sandbox_engine: Engine  # where spec files' SQL runs: no superuser (PostgreSQL)

    def open_connection(self, isolation: str) -> Connection: ...
    def open_text_connection(self, isolation: str, *, superuser: bool = False) -> Connection: ...
    def run_notes(self, isolation: str, sends_sql_as_written: bool) -> list[str]: ...
    def waits(self) -> WaitModel: ...
    def snapshot(self) -> None: ...
    def reset(self) -> None: ...
    def release_waiters(self) -> None: ...
    def rearm_waiters(self) -> None: ...
    def close(self) -> None: ...
