"""Incoming updates: kept in the inbox before the platform is told we have them, then handled one at a
time per chat (in order), many chats at once. Replies go out after the turn's changes are committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import send_direct
from bot.pacing import Pacer
from handlers.chat import Channel, ChatRef, Incoming
from handlers.context import HandlerSettings, Turn
from handlers.handbook.search import Handbook
from handlers.surveys.catalog import Catalog
from handlers.people import person_for
from handlers.router import route
from storage.models import InboxUpdate, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    channel: Channel
    pacer: Pacer


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        routes: dict[str, Route],
        settings: HandlerSettings,
        handbook: Handbook,
        surveys: Catalog,
        *,
        on_outbox: Callable[[], None],
        on_schedule: Callable[[], None],
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = 8,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._settings = settings
        self._handbook = handbook
        self._surveys = surveys
        self._on_outbox = on_outbox
        self._on_schedule = on_schedule
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._chat_locks: dict[ChatRef, asyncio.Lock] = {}
        self._queued: dict[ChatRef, int] = {}  # turns started per chat: its lock is dropped at zero
        self._tasks: set[asyncio.Task[None]] = set()

    async def receive(self, platform: str, key: str, payload: dict[str, Any]) -> bool:
        """Keep an update; False if it was already kept (a replayed webhook, a re-polled batch)."""
        async with self._sessions() as session:
            row = InboxUpdate(platform=platform, key=key, payload=payload, received_at=self._clock())
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                return False
        self._start(row)
        return True

    async def resume(self) -> int:
        """At start-up: handle what was kept but not handled when the last process stopped."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(InboxUpdate).where(col(InboxUpdate.processed_at).is_(None)).order_by(col(InboxUpdate.id))
            )
            pending = list(rows.all())
        for row in pending:
            self._start(row)
        return len(pending)

    async def drain(self) -> None:
        """Wait until everything received so far has been handled (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _start(self, row: InboxUpdate) -> None:
        route = self._routes.get(row.platform)
        incoming: Incoming | None = None
        error = ""
        try:
            incoming = route.channel.parse(row.payload) if route else None
        except Exception as exc:  # a malformed update: logged and skipped, never fatal
            log.warning("skipping malformed %s update %s: %s", row.platform, row.key, exc)
            error = f"malformed: {exc}"[:500]
        # the chat lock is taken in arrival order, before any await, so one chat's turns stay in order
        lock = asyncio.Lock()
        if incoming is not None:
            lock = self._chat_locks.setdefault(incoming.chat, lock)
            self._queued[incoming.chat] = self._queued.get(incoming.chat, 0) + 1
        task = asyncio.create_task(self._handle(row.id, incoming, error, lock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, row_id: int, incoming: Incoming | None, error: str, lock: asyncio.Lock) -> None:
        try:
            async with lock:
                async with self._slots:  # bounds open database sessions, not replies in flight
                    turn = await self._turn(row_id, incoming, error)
                if turn is not None:
                    await self._answer(turn)
        except Exception:
            log.exception("handling update %d failed; it is kept and retried at the next start", row_id)
        finally:
            if incoming is not None:
                self._release(incoming.chat)

    def _release(self, chat: ChatRef) -> None:
        self._queued[chat] -= 1
        if not self._queued[chat]:
            del self._queued[chat], self._chat_locks[chat]

    async def _turn(self, row_id: int, incoming: Incoming | None, error: str) -> Turn | None:
        async with self._sessions() as session:
            row = await session.get(InboxUpdate, row_id)
            if row is None or row.processed_at is not None:
                return None
            turn = None
            if incoming is not None:
                person = await person_for(session, incoming.platform, incoming.user_id, incoming.user_name)
                turn = Turn(incoming, session, person, self._settings, self._clock(), self._handbook, self._surveys)
                try:
                    await route(turn)
                except Exception as exc:
                    # a bug must not eat the message: it stays in the inbox with the error, the person
                    # is told, and nothing half-done is committed
                    log.exception("handler failed on update %d", row_id)
                    await session.rollback()
                    row = await session.get(InboxUpdate, row_id)
                    assert row is not None
                    error = f"handler: {exc!r}"[:500]
                    turn = Turn(
                        incoming, session, turn.person, self._settings, self._clock(), self._handbook, self._surveys
                    )
                    turn.say("internal_error")
            row.processed_at, row.error = self._clock(), error
            await session.commit()
        return turn

    async def _answer(self, turn: Turn) -> None:
        if turn.outbox_changed:
            self._on_outbox()
        if turn.schedule_changed:
            self._on_schedule()
        route = self._routes[turn.incoming.platform]
        if turn.incoming.callback_id:
            await route.channel.answer_button(turn.incoming, turn.reply.toast or "")
        for out in turn.reply.messages:
            await send_direct(route.channel, route.pacer, out, turn.incoming.chat_kind)
