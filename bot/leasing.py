"""Several processes on one database: this process's leases kept alive, and each platform polled by
the one process holding its `poll:<platform>` lease. When the holder dies, its lease runs out and
another process polls within LENGTH + RENEW_EVERY seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from bot.logs import trace_of
from storage.leases import RENEW_EVERY, Leases, poll_lease
from storage.outage import kind_of, unavailable

log = logging.getLogger(__name__)

Poll = Callable[[Callable[[], bool]], Coroutine[Any, Any, None]]  # polls while the callable says it may


class LeaseKeeper:
    def __init__(self, leases: Leases) -> None:
        self._leases = leases
        self._polls: dict[str, Poll] = {}
        self._held: set[str] = set()  # poll leases this process held at the last renewal it could make
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self._since: dict[str, float] = {}  # platform → when this process started polling it (epoch)
        self._away = False

    async def run(self, polls: dict[str, Poll]) -> None:
        """Until cancelled; then the pollers stop and their leases are given up at once (the chat
        leases go with their turns)."""
        self._polls = polls
        try:
            while True:
                await self._tick()
                await asyncio.sleep(RENEW_EVERY)
        finally:
            for task in self._pollers.values():
                task.cancel()
            await asyncio.gather(*self._pollers.values(), return_exceptions=True)
            if self._held:
                with contextlib.suppress(Exception):  # stopping: the leases run out anyway
                    await self._leases.release(*sorted(self._held))

    def polling_since(self, platform: str) -> float | None:
        """When this process started polling the platform; None while another process does (/healthz)."""
        poller = self._pollers.get(platform)
        return self._since.get(platform) if poller is not None and not poller.done() else None

    def holds(self, name: str) -> bool:
        """While the database is away the last answer stands: nobody can take the lease over without it,
        and polling goes on (Zalo's updates wait in memory until they can be kept)."""
        return name in self._held

    async def _tick(self) -> None:
        try:
            held = await self._leases.renew()
            for platform in self._polls:
                name = poll_lease(platform)
                if name not in held and await self._leases.take(name):
                    held.add(name)
        except Exception as exc:
            if not self._away:
                if unavailable(exc):
                    log.warning("leases not renewed: database unavailable (%s); trying again", kind_of(exc))
                else:
                    log.error("leases not renewed; trying again\n%s", trace_of(exc))
            self._away = True
            return
        self._away = False
        self._held = {poll_lease(platform) for platform in self._polls} & held
        for platform, poll in self._polls.items():
            name = poll_lease(platform)
            running = platform in self._pollers and not self._pollers[platform].done()
            if name in self._held and not running:
                log.info("%s: this process polls for updates now", platform)
                task = asyncio.create_task(poll(partial(self.holds, name)))
                task.add_done_callback(partial(_stopped, platform))
                self._pollers[platform], self._since[platform] = task, time.time()


def _stopped(platform: str, task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    if (exc := task.exception()) is not None:
        log.error("%s: polling stopped; it starts again while this process holds the lease\n%s", platform,
                  trace_of(exc))
    else:
        log.info("%s: another process polls now", platform)
