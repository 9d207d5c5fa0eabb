"""Incoming updates: kept in the inbox before the platform is told we have them, then handled one at a
time per chat (in order), many chats at once. Replies go out after the turn's changes are committed."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import replace
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import send_direct
from bot.logs import trace_of
from bot.metrics import Metrics
from bot.pacing import Pacer
from handlers.chat import Attachment, Button, Channel, ChatKind, ChatRef, Incoming, Outcome, Outgoing
from handlers.context import HandlerSettings, Turn
from handlers.handbook.search import Handbook
from handlers.surveys.catalog import Catalog
from handlers.people import person_for
from handlers.router import route
from messages import render
from storage.models import InboxUpdate, utcnow
from storage.outage import kind_of, retried, unavailable

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
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._routes = routes
        self._settings = settings
        self._handbook = handbook
        self._surveys = surveys
        self._on_outbox = on_outbox
        self._on_schedule = on_schedule
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._slots = asyncio.Semaphore(concurrency)
        self._chat_locks: dict[ChatRef, asyncio.Lock] = {}
        self._queued: dict[ChatRef, int] = {}  # turns started per chat: its lock is dropped at zero
        self._tasks: set[asyncio.Task[None]] = set()
        self._replied: list[int] = []  # inbox rows whose replies went out, to be marked so
        self._marking: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # turns waiting for the database give up: the next start has them

    async def receive(self, platform: str, key: str, payload: dict[str, Any]) -> bool:
        """Keep an update; False if it was already kept (a replayed webhook, a re-polled batch)."""
        async with self._sessions() as session:
            row = InboxUpdate(platform=platform, key=key, payload=payload, received_at=self._clock())
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                return False
        self._metrics.received(platform)
        self._start(row)
        return True

    async def resume(self) -> int:
        """At start-up: send the replies the last process did not get out, then handle what was kept
        but not handled when it stopped."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(InboxUpdate.id, InboxUpdate.replies)
                .where(InboxUpdate.reply_pending == True)  # noqa: E712 - SQL
                .order_by(col(InboxUpdate.id))
            )
            unanswered = list(rows.all())
        for row_id, kept in unanswered:
            assert row_id is not None  # a stored row
            # the person may have seen it just before the stop: the repeat says it is one
            restored = [_restore(record) for record in kept or []]
            await self._reply(row_id, [(replace(out, text=render("reply_resent", text=out.text)), kind)
                                       for out, kind in restored])
        if unanswered:
            log.info("%d turns' replies sent again after the last stop", len(unanswered))
        async with self._sessions() as session:
            waiting = await session.exec(
                select(InboxUpdate).where(col(InboxUpdate.processed_at).is_(None)).order_by(col(InboxUpdate.id))
            )
            pending = list(waiting.all())
        for row in pending:
            self._start(row)
        return len(pending)

    async def drain(self) -> None:
        """Wait until everything received so far has been handled (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._marking is not None:
            await asyncio.gather(self._marking, return_exceptions=True)

    def stop(self) -> None:
        """Turns waiting for the database stop waiting (then `drain`); their updates stay in the inbox."""
        self._stopping.set()

    def _start(self, row: InboxUpdate) -> None:
        route = self._routes.get(row.platform)
        incoming: Incoming | None = None
        error = ""
        try:
            incoming = route.channel.parse(row.payload) if route else None
        except Exception as exc:  # a malformed update: logged and skipped, never fatal
            # the parser's message can quote the update: its type is enough to find the row
            log.warning("skipping malformed %s update %s (%s)", row.platform, row.key, kind_of(exc))
            error = f"malformed: {kind_of(exc)}"[:500]
        # the chat lock is taken in arrival order, before any await, so one chat's turns stay in order
        lock = asyncio.Lock()
        if incoming is not None:
            lock = self._chat_locks.setdefault(incoming.chat, lock)
            self._queued[incoming.chat] = self._queued.get(incoming.chat, 0) + 1
        assert row.id is not None  # kept before it is started
        task = asyncio.create_task(self._handle(row.id, incoming, error, lock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, row_id: int, incoming: Incoming | None, error: str, lock: asyncio.Lock) -> None:
        started = time.monotonic()
        try:
            async with lock:  # held while the database is away: the chat's later messages wait behind
                turn = await retried(
                    lambda: self._turn_in_slot(row_id, incoming, error), f"update {row_id}", stop=self._stopping
                )
                if turn is not None:
                    await self._answer(row_id, turn)
                    self._metrics.turn(turn.incoming.platform, time.monotonic() - started)
        except Exception as exc:
            if unavailable(exc):  # only when stopping: no waiting for the database any longer
                log.warning("update %d not handled (%s); the next start handles it", row_id, kind_of(exc))
            else:
                log.error("handling update %d failed; it is kept and retried at the next start\n%s", row_id,
                          trace_of(exc))
        finally:
            if incoming is not None:
                self._release(incoming.chat)

    def _release(self, chat: ChatRef) -> None:
        self._queued[chat] -= 1
        if not self._queued[chat]:
            del self._queued[chat], self._chat_locks[chat]

    async def _turn_in_slot(self, row_id: int, incoming: Incoming | None, error: str) -> Turn | None:
        async with self._slots:  # bounds open database sessions; not held while waiting to try again
            return await self._turn(row_id, incoming, error)

    async def _turn(self, row_id: int, incoming: Incoming | None, error: str) -> Turn | None:
        async with self._sessions() as session:
            row = await session.get(InboxUpdate, row_id)
            if row is None or row.processed_at is not None:
                return None
            turn = None
            if incoming is not None:
                private = incoming.chat_kind is ChatKind.PRIVATE  # from now on the bot may write to them there
                person = await person_for(session, incoming.platform, incoming.user_id, incoming.user_name, private=private)
                row.person_id = person.id  # whose update: /xoadulieu blanks the household members' updates
                turn = Turn(incoming, session, person, self._settings, self._clock(), self._handbook, self._surveys)
                try:
                    await route(turn)
                except Exception as exc:
                    if unavailable(exc):
                        raise  # not the handler's fault: the whole turn is tried again
                    # a bug must not eat the message: it stays in the inbox with the error, the person
                    # is told, and nothing half-done is committed
                    log.error("handler failed on update %d\n%s", row_id, trace_of(exc))
                    log.debug("handler failed on update %d", row_id, exc_info=exc)
                    await session.rollback()
                    row = await session.get(InboxUpdate, row_id)
                    assert row is not None
                    error = f"handler: {kind_of(exc)}"[:500]  # the message can quote the person's text
                    person = await person_for(session, incoming.platform, incoming.user_id, incoming.user_name, private=private)
                    row.person_id = person.id  # stamped again: the rollback took the first stamp away
                    turn = Turn(incoming, session, person, self._settings, self._clock(), self._handbook, self._surveys)
                    turn.say("internal_error")
            row.processed_at, row.error = self._clock(), error
            kept = [k for out in turn.reply.messages if (k := _keep(out, turn.incoming.chat_kind))] if turn else []
            row.replies, row.reply_pending = kept or None, bool(kept)
            await session.commit()
            self._metrics.handled(row.platform, failed=bool(error))
        return turn

    async def _answer(self, row_id: int, turn: Turn) -> None:
        if turn.outbox_changed:
            self._on_outbox()
        if turn.schedule_changed:
            self._on_schedule()
        route = self._routes[turn.incoming.platform]
        if turn.incoming.callback_id:
            await route.channel.answer_button(turn.incoming, turn.reply.toast or "")
        if turn.reply.messages:
            await self._reply(row_id, [(out, turn.incoming.chat_kind) for out in turn.reply.messages])

    async def _reply(self, row_id: int, replies: list[tuple[Outgoing, ChatKind]]) -> None:
        """Send a turn's replies in order; those that failed for now stay kept for the next start."""
        unsent = []
        for out, kind in replies:
            route = self._routes.get(out.chat.platform)
            outcome = await send_direct(route.channel, route.pacer, out, kind) if route else Outcome.FAILED
            if outcome in (Outcome.FAILED, Outcome.THROTTLED) and (kept := _keep(out, kind)):
                unsent.append(kept)
        if unsent:
            async with self._sessions() as session:
                row = await session.get(InboxUpdate, row_id)
                if row is not None:
                    row.replies = unsent
                    await session.commit()
            return
        self._replied.append(row_id)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._mark_replied())

    async def _mark_replied(self) -> None:
        """Clear the kept replies of turns whose replies went out, many turns per statement. No waiting
        to gather more: until the mark is on disk, a crash would make the next start repeat them."""
        while self._replied:
            done, self._replied = self._replied, []
            try:
                await retried(partial(self._mark, done), "marking replies sent", stop=self._stopping)
            except Exception as exc:
                if not unavailable(exc):
                    raise
                # stopping with the database away: the next start sends them again, saying so
                log.warning("%d turns' replies not marked sent (%s)", len(done), kind_of(exc))

    async def _mark(self, done: list[int]) -> None:
        async with self._sessions() as session:
            await session.exec(
                update(InboxUpdate).where(col(InboxUpdate.id).in_(done)).values(replies=None, reply_pending=False)
            )
            await session.commit()


def _keep(out: Outgoing, kind: ChatKind) -> dict[str, Any] | None:
    """A reply as stored with its turn. A generated file (a chart, an export) is not kept: bytes in the
    inbox would cost more than asking for the report again."""
    if not out.text and out.attachment is None:
        return None
    return {
        "platform": out.chat.platform,
        "chat_id": out.chat.chat_id,
        "kind": kind.value,
        "text": out.text,
        "buttons": [[b.label, b.data] for b in out.buttons],
        "attachment": dataclasses.asdict(out.attachment) if out.attachment else None,
    }


def _restore(record: dict[str, Any]) -> tuple[Outgoing, ChatKind]:
    attachment = Attachment(**record["attachment"]) if record.get("attachment") else None
    out = Outgoing(
        ChatRef(record["platform"], record["chat_id"]),
        record["text"],
        tuple(Button(label, data) for label, data in record["buttons"]),
        attachment,
    )
    return out, ChatKind(record["kind"])
