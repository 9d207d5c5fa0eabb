"""Telling a database that is away for a moment from a bug, and waiting the first kind out.

A blip (PostgreSQL restarting or refusing connections, SQLite locked past its busy timeout or out of
disk) must cost time, never a resident's message or a scheduled notice: the work is retried with
back-off until the database answers. A bug is not retried, or it would retry forever.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import exc as sa

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY = 0.5
MAX_DELAY = 30.0

# SQLite result codes (primary, low byte) that say "not now" rather than "wrong"
_SQLITE_NOT_NOW = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL,
})


def unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database could not be reached or could not take the work now."""
    if isinstance(exc, (sa.TimeoutError, sa.InterfaceError, ConnectionError, TimeoutError)):
        return True  # no pooled connection came free, a connection broke, a socket gave up
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.OperationalError):
        code = getattr(exc.orig, "sqlite_errorcode", None)
        # every PostgreSQL OperationalError is about the server or the connection (refused, shut down,
        # deadlock, lock timeout); SQLite also uses the class for "no such table", which is a bug
        return code is None or code & 0xFF in _SQLITE_NOT_NOW
    return False


def delay(attempt: int) -> float:
    """Seconds to wait before try `attempt + 1`: 0.5, 1, 2 … at most MAX_DELAY."""
    return min(MAX_DELAY, FIRST_DELAY * 2 ** max(0, attempt - 1))


def kind_of(exc: BaseException) -> str:
    """An error's class names only: a database error's text carries SQL parameters (people's messages)."""
    cause = getattr(exc, "orig", None) or exc.__cause__
    return type(exc).__name__ + (f" ({type(cause).__module__}.{type(cause).__name__})" if cause else "")


async def retried(operation: Callable[[], Awaitable[T]], what: str, *, stop: asyncio.Event | None = None) -> T:
    """`operation()` again and again while the database is unavailable; any other error is raised at
    once, and so is the last one when `stop` is set (the process is shutting down)."""
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not unavailable(exc) or (stop is not None and stop.is_set()):
                raise
            attempt += 1
            wait = delay(attempt)
            log.warning("%s: database unavailable (%s), try %d; again in %.1f s", what, kind_of(exc), attempt, wait)
            if await _stopped_within(stop, wait):
                raise  # still inside the except: the database error itself


async def _stopped_within(stop: asyncio.Event | None, seconds: float) -> bool:
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
