"""Leases: a named right held by one process at a time, kept as a row (`lease`) that runs out unless
its holder renews it. `poll:<platform>` is the one process polling a platform; `chat:<platform>:<id>`
is the one process running a chat's turns.

Rows rather than PostgreSQL advisory locks: they work on both databases, they run out when their
holder hangs (an advisory lock held by a stuck connection never does), and a holder can prove it still
holds one inside the statement that acts on it (`holds`). Time is the database's, so processes whose
clocks disagree still agree on who holds what; SQLite has a single process and uses its own clock.
Taking a lease changes its holder, and a holder only renews or relies on rows naming itself: a process
that hung past its lease's end and wakes up finds it gone, and acts on nothing. Each change is a
statement of its own, sent without BEGIN and COMMIT (storage/autocommit.py)."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, exists, func, literal, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.sql.sqltypes import UTCDateTime

from storage.autocommit import autocommit
from storage.models import Lease, utcnow

LENGTH = timedelta(seconds=6)  # a dead holder's lease is taken over within this plus one renewal period
RENEW_EVERY = LENGTH.total_seconds() / 3


def holder_id() -> str:
    """This process, told apart from its namesakes on other machines and from an earlier one with its pid."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def poll_lease(platform: str) -> str:
    return f"poll:{platform}"


def chat_lease(platform: str, chat_id: str) -> str:
    return f"chat:{platform}:{chat_id}"


class Leases:
    """One process's leases on one database."""

    def __init__(self, engine: AsyncEngine, holder: str | None = None, length: timedelta = LENGTH) -> None:
        self._engine = engine
        self.holder = holder or holder_id()
        self._length = length
        self._postgres = engine.dialect.name == "postgresql"

    def now(self) -> ColumnElement[object]:
        """The database's clock; SQLite's single process has only its own."""
        return func.clock_timestamp() if self._postgres else literal(utcnow(), UTCDateTime())

    def _until(self) -> ColumnElement[object]:
        return self.now() + self._length if self._postgres else literal(utcnow() + self._length, UTCDateTime())

    async def take(self, name: str) -> bool:
        """The lease if nobody else holds it (never taken, released, or run out); renewed if already ours."""
        insert = postgresql.insert if self._postgres else sqlite.insert
        row = insert(Lease).values(name=name, holder=self.holder, expires_at=self._until())
        statement = row.on_conflict_do_update(
            index_elements=[col(Lease.name)],
            set_={"holder": row.excluded.holder, "expires_at": row.excluded.expires_at},
            where=(col(Lease.expires_at) < self.now()) | (col(Lease.holder) == row.excluded.holder),
        ).returning(col(Lease.name))
        async with autocommit(self._engine) as connection:
            return (await connection.execute(statement)).first() is not None

    async def renew(self) -> set[str]:
        """Every lease this process still holds, extended; those another process took are not in it."""
        async with autocommit(self._engine) as connection:
            rows = await connection.execute(
                update(Lease).where(col(Lease.holder) == self.holder).values(expires_at=self._until())
                .returning(col(Lease.name))
            )
            return set(rows.scalars())

    def holds(self, name: str) -> ColumnElement[bool]:
        """A condition for the statement that acts under the lease: it is still this process's and has
        not run out. `renew` keeps it alive meanwhile (every RENEW_EVERY, with all of the process's)."""
        return exists().where(
            col(Lease.name) == name, col(Lease.holder) == self.holder, col(Lease.expires_at) > self.now()
        )

    async def release(self, *names: str) -> None:
        """Given up at once: another process may take them without waiting for them to run out."""
        async with autocommit(self._engine) as connection:
            await connection.execute(
                delete(Lease).where(col(Lease.holder) == self.holder, col(Lease.name).in_(names))
            )

    async def release_all(self) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(Lease).where(col(Lease.holder) == self.holder))
