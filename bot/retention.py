"""Inbox retention: what people wrote to the bot is kept only as long as it is useful. Handled updates
(handled, replies out) older than `inbox_retention_days` are deleted, a few hundred rows per
transaction with a pause between, so chats keep their turn at the database (SQLite has one writer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import PrivacySettings
from storage.models import InboxUpdate
from storage.outage import kind_of

log = logging.getLogger(__name__)

BATCH = 500
PAUSE = 0.05  # seconds between batches: turns waiting for the database go first
EVERY = timedelta(hours=6)


class InboxRetention:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: PrivacySettings,
        clock: Callable[[], datetime],
        *,
        batch: int = BATCH,
        pause: float = PAUSE,
    ) -> None:
        self._sessions = sessions
        self._keep = timedelta(days=settings.inbox_retention_days)
        self._clock = clock
        self._batch = batch
        self._pause = pause

    async def run(self, stop: asyncio.Event) -> None:
        """At start, then every few hours, until `stop` is set; it is awaited, never cancelled, so it
        is never left inside a transaction (a cancelled SQLite session keeps its lock). A failed round
        (the database away) is logged and the next one tries again."""
        while not stop.is_set():
            try:
                await self.prune(stop)
            except Exception as exc:
                log.warning("inbox retention: this round failed (%s); the next one tries again", kind_of(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), EVERY.total_seconds())

    async def prune(self, stop: asyncio.Event | None = None) -> int:
        """Delete the handled updates older than the retention period; returns how many went."""
        cutoff = self._clock() - self._keep
        deleted = 0
        while True:
            async with self._sessions() as session:
                # the (processed_at, id) index: handled rows oldest first, never one still being handled
                # or whose replies have not gone out yet
                ids = list((await session.exec(
                    select(InboxUpdate.id)
                    .where(col(InboxUpdate.processed_at) < cutoff, InboxUpdate.reply_pending == False)  # noqa: E712 - SQL
                    .order_by(col(InboxUpdate.processed_at), col(InboxUpdate.id))
                    .limit(self._batch)
                )).all())
                if ids:
                    await session.exec(delete(InboxUpdate).where(col(InboxUpdate.id).in_(ids)))
                    await session.commit()
            deleted += len(ids)
            if len(ids) < self._batch or (stop is not None and stop.is_set()):
                break
            await asyncio.sleep(self._pause)
        if deleted:
            log.info("inbox retention: %d handled updates older than %d days deleted", deleted, self._keep.days)
        return deleted
