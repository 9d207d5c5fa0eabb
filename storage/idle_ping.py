"""A pooled PostgreSQL connection is pinged before use only when it sat idle in the pool for a while.

SQLAlchemy's pool_pre_ping pings at every checkout: a round trip (SELECT 1) before every turn, every
kept update and every delivery claim, about a fifth of a turn's cost. A connection in steady use needs
none: if the server went away meanwhile, the statement fails as an outage (storage/outage.py), the
caller tries again, and the pool replaces every connection older than the failure. An idle one is
where a restart, a failover or a firewall's idle timeout goes unnoticed, and it is pinged and replaced
before anyone uses it."""

from __future__ import annotations

import time

from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

IDLE_SECONDS = 10.0
_SINCE = "idle_since"


def ping_when_idle(engine: AsyncEngine, idle_seconds: float = IDLE_SECONDS) -> None:
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def checked_in(_dbapi: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info[_SINCE] = time.monotonic()

    def checked_out(dbapi: DBAPIConnection, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        since = record.info.pop(_SINCE, None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi)
            dbapi.rollback()  # the ping opened a transaction: the user of the connection may want autocommit
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi, None):
                # as pre-ping does: every connection pooled before now is replaced, this one at once
                raise InvalidatePoolError from exc
            raise

    event.listen(pool, "checkin", checked_in)
    event.listen(pool, "checkout", checked_out)
