"""Updates a platform cannot send again, held in memory until the database has kept them.

Zalo's getUpdates hands out an update once, with no offset to confirm: an update the database could not
store at that moment would be lost. It waits here instead, in arrival order, while polling goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from bot.logs import size_of
from storage.outage import kind_of, retried, unavailable

log = logging.getLogger(__name__)

LIMIT = 10_000  # updates; a few MB, hours of a commune's messages

Store = Callable[[str, dict[str, Any]], Awaitable[object]]


class Backlog:
    def __init__(self, platform: str, store: Store, limit: int = LIMIT) -> None:
        self._platform = platform
        self._store = store
        self._limit = limit
        self._waiting: deque[tuple[str, dict[str, Any]]] = deque()  # the head is being stored
        self._arrived = asyncio.Event()
        self._closing = asyncio.Event()
        self._storing: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def start(self) -> None:
        self._storing = asyncio.create_task(self._drain())

    async def close(self) -> None:
        """Stop once the update being stored is stored or refused: a task cancelled inside a database
        transaction can leave its connection, and SQLite's lock, behind. What is left is counted."""
        self._closing.set()
        self._arrived.set()
        if self._storing is not None:
            await asyncio.gather(self._storing, return_exceptions=True)
        if self._waiting:
            log.error("%s: stopping with %d received updates not stored; they are lost", self._platform, len(self))

    def add(self, key: str, payload: dict[str, Any]) -> None:
        if len(self._waiting) >= self._limit:
            log.error(
                "%s: update %s (%d bytes) lost: %d updates already wait for the database",
                self._platform, key, size_of(payload), len(self._waiting),
            )
            return
        self._waiting.append((key, payload))
        self._arrived.set()

    async def _drain(self) -> None:
        """Store what arrives, one at a time in arrival order, each retried until the database answers."""
        while not self._closing.is_set():
            await self._arrived.wait()
            self._arrived.clear()
            while self._waiting and not self._closing.is_set():
                key, payload = self._waiting[0]
                if not await self._keep(key, payload):
                    return
                self._waiting.popleft()

    async def _keep(self, key: str, payload: dict[str, Any]) -> bool:
        """False when closing before the database answered: the update is still waiting."""
        try:
            await retried(lambda: self._store(key, payload), f"{self._platform} update {key}", stop=self._closing)
        except Exception as exc:
            if unavailable(exc):
                return False
            # not the database being away: trying again would fail again
            log.error("%s: update %s (%d bytes) lost: %s", self._platform, key, size_of(payload), kind_of(exc))
        return True

