"""A statement that is a transaction on its own. On PostgreSQL it goes out without BEGIN and COMMIT,
each of which is a round trip of its own with psycopg: at a hundred turns a second those cost more
than the statement. SQLite's single process keeps its usual transaction (BEGIN IMMEDIATE, storage/db.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection on which each statement commits by itself; for one statement, or for several that
    need not hold together."""
    if engine.dialect.name != "postgresql":
        async with engine.begin() as connection:
            yield connection
        return
    async with engine.connect() as connection:
        # the driver's autocommit flag, set and reset without a word to the server
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")
