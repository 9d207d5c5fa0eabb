"""Incoming updates: kept in the inbox before the platform is told we have them, then handled one at a
time per chat (in order), many chats at once. Replies go out after the turn's changes are committed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import replace
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, exists, false, func, literal, update
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
from storage.leases import LENGTH, Leases, chat_lease
from storage.models import InboxUpdate, Lease, utcnow
from storage.outage import kind_of, retried, unavailable

log = logging.getLogger(__name__)

SWEEP_EVERY = 1.0  # seconds between looks for updates of chats nobody holds (several processes)
SWEEP_LIMIT = 200  # chats taken up per look



@dataclass(frozen=True)
class Route:
    channel: Channel
    pacer: Pacer


@dataclass
class _ChatWork:
    """This process's worker for one chat."""

    again: bool = True  # look for unhandled updates (once more)
    parsed: dict[int, Incoming] = field(default_factory=dict)  # updates read when they were kept


class _Lost(Exception):
    """The chat's lease was taken over by another process while a turn ran (this one hung past it)."""


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
        leases: Leases | None = None,
    ) -> None:
        """`leases`: other processes share the database, and a chat's turns run in the one holding its
        lease; None when this is the only process (SQLite), where its own chat workers suffice."""
        self._sessions = sessions
        self._routes = routes
        self._settings = settings
        self._handbook = handbook
        self._surveys = surveys
        self._on_outbox = on_outbox
        self._on_schedule = on_schedule
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._leases = leases
        self._slots = asyncio.Semaphore(concurrency)
        self._chats: dict[ChatRef, _ChatWork] = {}  # at most one worker per chat in this process
        self._tasks: set[asyncio.Task[None]] = set()
        self._replied: list[int] = []  # inbox rows whose replies went out, to be marked so
        self._marking: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # turns waiting for the database give up: the next start has them

    async def receive(self, platform: str, key: str, payload: dict[str, Any]) -> bool:
        """Keep an update; False if it was already kept (a replayed webhook, a re-polled batch)."""
        incoming, error = self._parse(platform, key, payload)
        async with self._sessions() as session:
            chat_id = incoming.chat.chat_id if incoming else None
            row = InboxUpdate(platform=platform, key=key, chat_id=chat_id, payload=payload, received_at=self._clock())
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                return False
        self._metrics.received(platform)
        assert row.id is not None  # just kept
        if incoming is None:
            self._spawn(self._handle_alone(row.id, error))
        else:
            self._wake(incoming.chat, {row.id: incoming})
        return True

    async def resume(self) -> int:
        """At start-up: send the replies the last process did not get out, then handle what was kept
        but not handled when it stopped."""
        unanswered = await self._unanswered()
        for row_id, kept in unanswered:
            # the person may have seen it just before the stop: the repeat says it is one
            restored = [_restore(record) for record in kept or []]
            await self._reply(row_id, [(replace(out, text=render("reply_resent", text=out.text)), kind)
                                       for out, kind in restored])
        if unanswered:
            log.info("%d turns' replies sent again after the last stop", len(unanswered))
        await self._find_chats()
        return await self._sweep(everything=True)

    async def sweep(self, stopping: asyncio.Event) -> None:
        """With other processes: about every second, take up the updates of chats nobody holds (kept by
        a process while another held the chat, or left by a process that died mid-turn)."""
        while not stopping.is_set():
            try:
                await self._sweep(everything=False)
            except Exception as exc:  # never the end of the sweep: a dead process's chats depend on it
                if unavailable(exc):
                    log.warning("looking for updates left unhandled failed (%s); trying again", kind_of(exc))
                else:
                    log.error("looking for updates left unhandled failed; trying again\n%s", trace_of(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), SWEEP_EVERY)

    async def drain(self) -> None:
        """Wait until everything received so far has been handled (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._marking is not None:
            await asyncio.gather(self._marking, return_exceptions=True)

    def stop(self) -> None:
        """Turns waiting for the database stop waiting (then `drain`); their updates stay in the inbox."""
        self._stopping.set()

    def _parse(self, platform: str, key: str, payload: dict[str, Any]) -> tuple[Incoming | None, str]:
        route = self._routes.get(platform)
        try:
            return (route.channel.parse(payload) if route else None), ""
        except Exception as exc:  # a malformed update: logged and skipped, never fatal
            # the parser's message can quote the update: its type is enough to find the row
            log.warning("skipping malformed %s update %s (%s)", platform, key, kind_of(exc))
            return None, f"malformed: {kind_of(exc)}"[:500]

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _wake(self, chat: ChatRef, parsed: dict[int, Incoming]) -> None:
        """Have this process's worker for the chat look at its unhandled updates (one worker per chat:
        turns run one at a time, oldest first). `parsed`: updates this process read already."""
        work = self._chats.get(chat)
        if work is None:
            work = self._chats[chat] = _ChatWork()
            self._spawn(self._run_chat(chat, work))
        work.parsed.update(parsed)
        work.again = True

    async def _run_chat(self, chat: ChatRef, work: _ChatWork) -> None:
        """Hold the chat, handle its unhandled updates oldest first, let it go. An update kept by another
        process while this one held the chat (its worker could not take the chat) is found after the
        chat is let go; one that arrives here meanwhile sets `again`."""
        name = chat_lease(chat.platform, chat.chat_id)
        try:
            while work.again:
                work.again = False
                if not await retried(partial(self._claim, name), f"taking chat {name}", stop=self._stopping):
                    continue  # the holder finds our update when it lets the chat go, or the sweep does
                try:
                    await self._handle_chat(chat, work, name)
                finally:
                    await self._unclaim(name)
                if self._leases is not None and await retried(
                    partial(self._waiting, chat), f"looking at chat {name}", stop=self._stopping
                ):
                    work.again = True
        except Exception as exc:
            if unavailable(exc):  # only when stopping: no waiting for the database any longer
                log.warning("chat %s not handled (%s); it is handled later", name, kind_of(exc))
            else:
                log.error("handling chat %s failed; its updates are kept and handled later\n%s", name, trace_of(exc))
        finally:
            del self._chats[chat]

    async def _handle_chat(self, chat: ChatRef, work: _ChatWork, name: str) -> None:
        while True:
            started = time.monotonic()
            try:
                done = await retried(partial(self._turn_in_slot, chat, work, name), f"chat {name}", stop=self._stopping)
            except _Lost:
                log.warning("chat %s was taken over by another process mid-turn; it carries on there", name)
                return
            if done is None:
                return
            row_id, turn = done
            if turn is not None:
                await self._answer(row_id, turn)
                self._metrics.turn(turn.incoming.platform, time.monotonic() - started)

    async def _claim(self, name: str) -> bool:
        return True if self._leases is None else await self._leases.take(name)

    async def _unclaim(self, name: str) -> None:
        if self._leases is not None:
            try:
                await retried(partial(self._leases.release, name), f"letting chat {name} go", stop=self._stopping)
            except Exception as exc:
                if not unavailable(exc):
                    raise
                log.warning("chat %s not let go (%s); another process takes it when it runs out", name, kind_of(exc))

    async def _turn_in_slot(self, chat: ChatRef, work: _ChatWork, name: str) -> tuple[int, Turn | None] | None:
        async with self._slots:  # bounds open database sessions; not held while waiting to try again
            async with self._sessions() as session:
                row = (await session.exec(
                    select(InboxUpdate)
                    .where(InboxUpdate.platform == chat.platform, InboxUpdate.chat_id == chat.chat_id,
                           col(InboxUpdate.processed_at).is_(None))
                    .order_by(col(InboxUpdate.id)).limit(1).with_for_update()
                )).first()
                if row is None:
                    return None
                row_id = row.id
                assert row_id is not None  # a stored row
                known = work.parsed.pop(row_id, None)
                incoming, error = (known, "") if known else self._parse(row.platform, row.key, row.payload)
                try:
                    turn = await self._turn(session, row, incoming, error)
                except Exception as exc:
                    if unavailable(exc):
                        raise
                    # not the handler (that one is answered inside the turn): a bug here must not hold
                    # up the chat's later messages, nor come back forever; the row keeps the error
                    log.error("handling update %d failed; it is set aside\n%s", row_id, trace_of(exc))
                    await session.rollback()
                    reread = await session.get(InboxUpdate, row_id)
                    assert reread is not None
                    row = reread
                    turn = None
                    row.processed_at, row.error = self._clock(), f"failed: {kind_of(exc)}"[:500]
                if self._leases is not None and not await self._leases.confirm(await session.connection(), name):
                    raise _Lost  # nothing of the turn is committed: the new holder runs it
                await session.commit()
                self._metrics.handled(row.platform, failed=bool(row.error))
                return row_id, turn

    async def _handle_alone(self, row_id: int, error: str | None) -> None:
        """An update with no chat to keep in order (malformed, or nothing the bot handles): marked done,
        with what was wrong with it (None: read it again to find out)."""
        try:
            await retried(partial(self._mark_alone, row_id, error), f"update {row_id}", stop=self._stopping)
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("update %d not handled (%s); the next start handles it", row_id, kind_of(exc))

    async def _mark_alone(self, row_id: int, error: str | None) -> None:
        async with self._sessions() as session:
            row = await session.get(InboxUpdate, row_id, with_for_update=True)
            if row is None or row.processed_at is not None:
                return
            if error is None:
                error = self._parse(row.platform, row.key, row.payload)[1]
            row.processed_at, row.error = self._clock(), error
            await session.commit()
            self._metrics.handled(row.platform, failed=bool(error))

    async def _turn(self, session: AsyncSession, row: InboxUpdate, incoming: Incoming | None, error: str) -> Turn | None:
        """Run the update's turn in the session; the row is marked handled, with the replies to send."""
        row_id = row.id
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
                reread = await session.get(InboxUpdate, row_id)
                assert reread is not None
                row = reread
                error = f"handler: {kind_of(exc)}"[:500]  # the message can quote the person's text
                person = await person_for(session, incoming.platform, incoming.user_id, incoming.user_name, private=private)
                row.person_id = person.id  # stamped again: the rollback took the first stamp away
                turn = Turn(incoming, session, person, self._settings, self._clock(), self._handbook, self._surveys)
                turn.say("internal_error")
        row.processed_at, row.error = self._clock(), error
        kept = [k for out in turn.reply.messages if (k := _keep(out, turn.incoming.chat_kind))] if turn else []
        row.replies, row.reply_pending = kept or None, bool(kept)
        return turn

    async def _unanswered(self) -> list[tuple[int, Any]]:
        """Turns whose replies did not all go out. With other processes running, only those of chats
        nobody holds, and not just handled: their process may be sending them right now."""
        query = (
            select(InboxUpdate.id, InboxUpdate.replies)
            .where(InboxUpdate.reply_pending == True)  # noqa: E712 - SQL
            .order_by(col(InboxUpdate.id))
        )
        if self._leases is not None:
            settled = self._clock() - 2 * LENGTH
            query = query.where(col(InboxUpdate.processed_at) < settled, ~self._held_elsewhere())
        async with self._sessions() as session:
            return [(row_id, kept) for row_id, kept in (await session.exec(query)).all() if row_id is not None]

    async def _find_chats(self) -> None:
        """Updates kept before their chat was (schema 0010) get it, so they too are handled in order."""
        async with self._sessions() as session:
            rows = (await session.exec(
                select(InboxUpdate).where(col(InboxUpdate.processed_at).is_(None), col(InboxUpdate.chat_id).is_(None))
            )).all()
            for row in rows:
                incoming, _ = self._parse(row.platform, row.key, row.payload)
                if incoming is not None:
                    row.chat_id = incoming.chat.chat_id
            await session.commit()

    async def _sweep(self, *, everything: bool) -> int:
        """Start on the unhandled updates of chats nobody holds; `everything` (at start-up): all of them,
        also updates without a chat just kept, whose own process is otherwise left time to mark them.
        Returns how many updates were found waiting."""
        pending = col(InboxUpdate.processed_at).is_(None)
        chats = (
            select(InboxUpdate.platform, InboxUpdate.chat_id, func.count())
            .where(pending, col(InboxUpdate.chat_id).is_not(None), ~self._held_elsewhere())
            .group_by(col(InboxUpdate.platform), col(InboxUpdate.chat_id))
        )
        alone = select(InboxUpdate.id).where(pending, col(InboxUpdate.chat_id).is_(None)).order_by(col(InboxUpdate.id))
        if not everything:
            chats = chats.limit(SWEEP_LIMIT)
            alone = alone.where(col(InboxUpdate.received_at) < self._clock() - 2 * LENGTH).limit(SWEEP_LIMIT)
        async with self._sessions() as session:
            waiting = (await session.exec(chats)).all()
            lone = (await session.exec(alone)).all()
        for platform, chat_id, _ in waiting:
            assert chat_id is not None  # as selected
            self._wake(ChatRef(platform, chat_id), {})
        for row_id in lone:
            assert row_id is not None  # a stored row
            self._spawn(self._handle_alone(row_id, None))
        return sum(count for _, _, count in waiting) + len(lone)

    def _held_elsewhere(self) -> ColumnElement[bool]:
        """The update's chat is held by a live lease (this process's own included)."""
        if self._leases is None:
            return false()  # this is the only process
        name = literal("chat:") + col(InboxUpdate.platform) + literal(":") + col(InboxUpdate.chat_id)
        return exists().where(col(Lease.name) == name, col(Lease.expires_at) > self._leases.now())

    async def _waiting(self, chat: ChatRef) -> bool:
        async with self._sessions() as session:
            found = await session.exec(
                select(InboxUpdate.id).where(
                    InboxUpdate.platform == chat.platform, InboxUpdate.chat_id == chat.chat_id,
                    col(InboxUpdate.processed_at).is_(None),
                ).limit(1)
            )
            return found.first() is not None

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
