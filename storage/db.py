"""Engines and sessions. One URL names the database; the async engine serves the bot, the sync
URL serves migrations and apscheduler's job store."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.idle_ping import ping_when_idle


def async_url(url: str) -> str:
    parsed = make_url(_canonical(url))
    driver = "aiosqlite" if parsed.get_backend_name() == "sqlite" else "psycopg"
    return parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}").render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    parsed = make_url(_canonical(url))
    driver = "pysqlite" if parsed.get_backend_name() == "sqlite" else "psycopg"
    return parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(_canonical(url)).get_backend_name() == "sqlite"


def shown(url: str) -> str:
    """The URL as the operator may read it: the password hidden, a SQLite file's full path."""
    parsed = make_url(_canonical(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    database = make_url(_canonical(url)).database if is_sqlite(url) else None
    return Path(database) if database and database != ":memory:" else None


def _canonical(url: str) -> str:
    if url.startswith("postgres://"):
        return "postgresql://" + url.removeprefix("postgres://")
    return url


def create_engine(url: str) -> AsyncEngine:
    """hide_parameters: a failing statement's values (what people wrote) stay out of errors and logs."""
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, handed out in turn: SQLite has a single writer anyway, and waiting for the
        # pool is an await, where waiting on SQLite's lock would be a thread sleeping in its busy handler.
        engine = create_async_engine(
            async_url(url), connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60,
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    engine = create_async_engine(async_url(url), pool_size=10, max_overflow=10, hide_parameters=True)
    ping_when_idle(engine)  # not before every use, as pool_pre_ping would: a round trip per turn
    return engine


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets the delivery worker commit while handlers read; NORMAL is durable across a process
    # kill (only an OS crash can lose the last transactions).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # erased rows (/xoadulieu) are overwritten, not left readable in the file's free pages
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below


def _begin_immediate(connection: Connection) -> None:
    # Take the write lock when a transaction starts: a transaction that read first and wrote later
    # could otherwise fail at once with "database is locked" when another one wrote in between.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def insert_if_absent(session: AsyncSession, model: type[SQLModel], **values: object) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: two transactions creating the same row at once both succeed,
    and one row exists (PostgreSQL makes the second wait for the first rather than fail). True if
    this one inserted it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # the row comes back only if inserted (the row count says -1 when the driver returns rows)
    key = model.__table__.primary_key.columns  # type: ignore[attr-defined]
    result = await session.exec(insert(model).values(**values).on_conflict_do_nothing().returning(*key))
    return result.first() is not None
