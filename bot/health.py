"""What /healthz and /metrics ask at request time: does the database answer, does each poller still
get answers, how far behind is the outbox. Nothing personal: counts, times and modes only."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.metrics import LAST_POLL, LAST_UPDATE, Metrics
from storage.models import ChatGroup, Delivery, DeliveryStatus, Follower
from storage.outage import kind_of

log = logging.getLogger(__name__)

T = TypeVar("T")

ANSWER_WITHIN = 2.0  # seconds: a database slower than this counts as not answering
# a long poll answers within 25 s when idle and failures back off to 30 s: five minutes without one
# success is an outage, not bad luck
POLL_STALE_AFTER = 300.0


class Probe(Generic[T]):
    """A query run at most once at a time and never cancelled (a task cancelled inside a SQLite
    transaction leaves the database locked for the rest of the process). A caller waits for it at most
    `within` seconds; a slower answer counts as none, and the query finishes in the background."""

    def __init__(self, query: Callable[[], Coroutine[Any, Any, T]], within: float = ANSWER_WITHIN) -> None:
        self._query = query
        self._within = within
        self._running: asyncio.Task[T] | None = None

    async def __call__(self) -> T | None:
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._query())
            self._running.add_done_callback(_retrieve)
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), self._within)
        except TimeoutError:
            log.warning("database check: no answer within %.1f s", self._within)
        except Exception as exc:
            log.warning("database check failed (%s)", kind_of(exc))
        return None

    async def close(self) -> None:
        """Wait for a query still running (at stop, before the engine goes)."""
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """A failure nobody waited for any more (it came after the timeout) was logged by then as no answer."""
    if not task.cancelled():
        task.exception()


class Health:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        metrics: Metrics,
        modes: Mapping[str, str],
        poll_stale_after: float = POLL_STALE_AFTER,
        polling_since: Callable[[str], float | None] | None = None,
    ) -> None:
        """`polling_since`: when this process started polling a platform, None while another process
        does (several processes share a database: one polls); None here: this process polls all along."""
        self.poll_stale_after = poll_stale_after
        self._polling_since = polling_since
        self._metrics = metrics
        self._modes = dict(modes)  # platform → "polling" or "webhook"
        self._started = time.time()
        self._database = Probe(lambda: _select_one(engine))
        self._backlog = Probe(lambda: _outbox_backlog(sessions))

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when the database answers and no poller has gone long without a successful poll."""
        database = await self._database() is not None
        self._metrics.database_up.set(database)
        channels = {platform: self._channel(platform, mode) for platform, mode in sorted(self._modes.items())}
        healthy = database and all(c["healthy"] for c in channels.values())
        return healthy, {"healthy": healthy, "database": "ok" if database else "unavailable", "channels": channels}

    def _channel(self, platform: str, mode: str) -> dict[str, Any]:
        polled = self._metrics.last(LAST_POLL, platform)
        report: dict[str, Any] = {"mode": mode, "last_update": _iso(self._metrics.last(LAST_UPDATE, platform))}
        since = self._started if self._polling_since is None else self._polling_since(platform)
        if mode == "polling" and since is not None:
            report["last_poll"] = _iso(polled)
            report["healthy"] = time.time() - max(polled or 0.0, since) <= self.poll_stale_after
        elif mode == "polling":
            report["polled_by"] = "another process"
            report["healthy"] = True
        else:
            report["healthy"] = True  # whether the platform reaches us is for the proxy's logs to say
        return report

    async def scrape(self) -> bytes:
        """The metrics in Prometheus text format, the outbox figures read now from the database (the
        last figures stay when it does not answer, and langso_database_up says so)."""
        backlog = await self._backlog()
        self._metrics.database_up.set(backlog is not None)
        if backlog is not None:
            # a platform no longer served still shows: its groups' notices are stuck
            for platform in sorted(self._modes.keys() | backlog.keys()):
                pending, oldest = backlog.get(platform, (0, 0.0))
                self._metrics.outbox(platform, pending, oldest)
        return self._metrics.exposition()

    async def close(self) -> None:
        await self._database.close()
        await self._backlog.close()


async def _select_one(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(text("SELECT 1"))).scalar_one()


async def _outbox_backlog(sessions: async_sessionmaker[AsyncSession]) -> dict[str, tuple[int, float]]:
    """Per platform: deliveries due and not yet sent, and how many seconds the oldest has waited."""
    now = datetime.now(UTC)
    async with sessions() as session:
        platform = func.coalesce(ChatGroup.platform, Follower.platform)  # a group's, or a follower's chat
        rows = await session.exec(
            select(platform, func.count(), func.min(Delivery.not_before))
            .join(ChatGroup, col(Delivery.group_id) == ChatGroup.id, isouter=True)
            .join(Follower, col(Delivery.follower_id) == Follower.id, isouter=True)
            .where(col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
            .where(col(Delivery.not_before) <= now)
            .group_by(platform)
        )
        return {platform: (count, max(0.0, (now - oldest).total_seconds())) for platform, count, oldest in rows.all()}


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
