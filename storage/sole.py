"""SQLite serves one bot process: `langso run` holds an exclusive lock on `<database>.lock` for as long as
it runs. The kernel drops the lock when the process ends, however it ends, so a crash never leaves the
file locked. CLI commands (`langso admin …`, `langso export`) do not take it and work beside the bot."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import TextIO

from storage.db import sqlite_path


class InUse(Exception):
    """Another process runs the bot on this SQLite file."""


def hold_sqlite(url: str) -> TextIO | None:
    """The open lock file, which holds the lock until it is closed; None for PostgreSQL or an
    in-memory database, which need none. Raises InUse without waiting when another process holds it."""
    database = sqlite_path(url)
    if database is None:
        return None
    path = Path(f"{database}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise InUse(str(path)) from None
    return lock
