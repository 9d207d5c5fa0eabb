"""Schema migrations (alembic). `langso db upgrade` and the bot's start-up both call upgrade().

Several processes may start at once on a new database (two CLI commands, the bot and a command):
migrations run one process at a time, and whoever comes second finds the schema at head. On SQLite an
exclusive lock on a file next to the database serialises them; on PostgreSQL an advisory lock taken
on the migration connection does (storage/migrations/env.py)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from storage.db import is_sqlite, sync_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    with _sqlite_file_lock(url):
        command.upgrade(alembic_config(url), "head")


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    """Held while migrating a SQLite file; nothing to hold for PostgreSQL or an in-memory database."""
    database = make_url(url).database if is_sqlite(url) else None
    if not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # blocks until the other process has finished migrating
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
