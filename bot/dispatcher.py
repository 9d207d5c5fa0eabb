"""Incoming updates: kept in the inbox before the platform is told we have them, then handled one at a
time per chat (in order), many chats at once. Replies go out after the turn's changes are committed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, exists, false, literal
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import send_direct
from bot.logs import trace_of
from bot.metrics import Metrics
from bot.pacing import Pacer
from handlers.chat import Attachment, Button, Channel, ChatKind, ChatRef, Incoming, Outcome, Outgoing
from handlers.context import HandlerSettings, Turn
from handlers.handbook.search import Handbook
from handlers.people import arrival, person_for
from handlers.router import route
from handlers.surveys.catalog import Catalog
from messages import render
from storage import inbox
from storage.autocommit import autocommit
from storage.leases import LENGTH, Leases, chat_lease
from storage.models import InboxUpdate, Lease, Person, utcnow
from storage.outage import kind_of, retried, unavailable

log = logging.getLogger(__name__)

SWEEP_EVERY = 1.0  # seconds between looks for updates of chats nobody holds (several processes)
SWEEP_LIMIT = 500  # updates taken up per look
SETTLED = timedelta(seconds=2)  # the sweep leaves a newer update to the process that kept it
HOLD = 1.0  # seconds a chat is kept after its last turn: a quick next message needs no new lease



@dataclass(frozen=True)
class Route:
    channel: Channel
    pacer: Pacer


@dataclass
class _ChatWork:
    """This process's worker for one chat."""

    again: bool = True  # take the chat and look for unhandled updates (once more)
    look: bool = True  # the inbox may hold updates of the chat this process did not read
    parsed: dict[int, Incoming] = field(default_factory=dict)  # updates read when they were kept
    woken: asyncio.Event = field(default_factory=asyncio.Event)  # something new for a worker holding the chat


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
        self._engine: AsyncEngine = sessions.kw["bind"]  # for statements that need no ORM session
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
        self._draining = False  # chats are let go as soon as nothing is left to handle

    async def receive(self, platform: str, key: str, payload: dict[str, Any]) -> bool:
        """Keep an update; False if it was already kept (a replayed webhook, a re-polled batch)."""
        incoming, error = self._parse(platform, key, payload)
        chat_id = incoming.chat.chat_id if incoming else None
        async with autocommit(self._engine) as connection:
            row_id = await inbox.keep(connection, platform, key, chat_id, payload, self._clock())
        if row_id is None:
            return False
        self._metrics.received(platform)
        if incoming is None:
            self._spawn(self._handle_alone(row_id, error))
        else:
            self._wake(incoming.chat, {row_id: incoming})
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
        """Wait until everything received so far has been handled (tests, shutdown); chats are let go
        without waiting for a next message."""
        self._draining = True
        try:
            while self._tasks:
                self._let_go()
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        finally:
            self._draining = False
        if self._marking is not None:
            await asyncio.gather(self._marking, return_exceptions=True)

    def stop(self) -> None:
        """Turns waiting for the database stop waiting (then `drain`); their updates stay in the inbox."""
        self._stopping.set()
        self._let_go()

    def _let_go(self) -> None:
        for work in self._chats.values():
            work.woken.set()

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
        work.look = work.look or not parsed  # from the sweep: updates this process did not read
        work.woken.set()

    async def _run_chat(self, chat: ChatRef, work: _ChatWork) -> None:
        """Hold the chat, handle its unhandled updates oldest first, keep it HOLD seconds for a next
        message, let it go. An update kept by another process while this one held the chat (its worker
        could not take the chat) is found after the chat is let go; one that arrives here meanwhile
        sets `again`."""
        name = chat_lease(chat.platform, chat.chat_id)
        try:
            while work.again:
                work.again = False
                if not await retried(partial(self._claim, name), f"taking chat {name}", stop=self._stopping):
                    continue  # the holder finds our update when it lets the chat go, or the sweep does
                work.look = True
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
        """Turns while there are updates to handle. The inbox is read when this process kept an update
        of the chat or may not know of one (just taken, woken by the sweep, the last one came from
        elsewhere), not after every turn."""
        while True:
            if not (work.look or work.parsed):
                if not await self._held_for_more(work):
                    return
                continue
            work.again, work.look = False, False
            work.woken.clear()
            read = set(work.parsed)
            started = time.monotonic()
            try:
                done = await retried(partial(self._turn_in_slot, chat, work, name), f"chat {name}", stop=self._stopping)
            except _Lost:
                log.warning("chat %s was taken over by another process mid-turn; it carries on there", name)
                return
            if done is None:
                for row_id in read:  # handled meanwhile (by a process that held the chat before)
                    work.parsed.pop(row_id, None)
                continue
            row_id, turn = done
            if row_id not in read:
                work.look = True  # it came from the inbox: more may wait there
            if turn is not None:
                await self._answer(row_id, turn)
                self._metrics.turn(turn.incoming.platform, time.monotonic() - started)

    async def _held_for_more(self, work: _ChatWork) -> bool:
        """Nothing left: wait up to HOLD seconds for a next message, still holding the chat (several
        processes; with one there is no lease to spare)."""
        if self._leases is None or self._draining or self._stopping.is_set():
            return False
        try:
            await asyncio.wait_for(work.woken.wait(), HOLD)
        except TimeoutError:
            return False
        return not (self._draining or self._stopping.is_set())

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
        """The chat's oldest unhandled update, handled in one transaction. The update this process read
        first is most likely it: the row is stamped with its sender's person as it is locked."""
        # the slot bounds open database sessions; it is not held while waiting to try again
        async with self._slots, self._sessions() as session:
                expected = min(work.parsed, default=None)
                sender = work.parsed[expected].user_id if expected is not None else None
                connection = await session.connection()
                taken = await inbox.take_oldest(connection, chat.platform, chat.chat_id, sender)
                if taken is None:
                    return None
                row_id, stamped = taken
                incoming, error = work.parsed.pop(row_id, None), ""
                turn = None
                if row_id != expected and incoming is None:  # one this process did not read
                    platform, key, payload = await inbox.read(connection, row_id)
                    incoming, error = self._parse(platform, key, payload)
                try:
                    if incoming is not None:
                        turn, error = await self._turn(session, row_id, incoming, stamped)
                    elif stamped is not None:
                        await inbox.stamp(connection, row_id, None)  # with the person of the update expected
                except Exception as exc:
                    if unavailable(exc):
                        raise
                    # not the handler (that one is answered inside the turn): a bug here must not hold
                    # up the chat's later messages, nor come back forever; the row keeps the error
                    log.error("handling update %d failed; it is set aside\n%s", row_id, trace_of(exc))
                    await session.rollback()
                    turn, error = None, f"failed: {kind_of(exc)}"[:500]
                kept = [k for out in turn.reply.messages if (k := _keep(out, turn.incoming.chat_kind))] if turn else []
                # with other processes, only while the chat is still ours: one that hung past its lease
                # commits nothing, and the new holder runs the turn
                held = self._leases.holds(name) if self._leases is not None else None
                if not await inbox.finish(await session.connection(), row_id, self._clock(), error, kept or None,
                                          only_if=held):
                    raise _Lost
                await session.commit()
                self._metrics.handled(chat.platform, failed=bool(error))
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

    async def _person(self, session: AsyncSession, incoming: Incoming) -> Person:
        private = incoming.chat_kind is ChatKind.PRIVATE  # from now on the bot may write to them there
        return await person_for(session, incoming.platform, incoming.user_id, incoming.user_name, private=private)

    async def _turn(
        self, session: AsyncSession, row_id: int, incoming: Incoming, stamped: int | None
    ) -> tuple[Turn, str]:
        """Run the update's turn in the session: the turn, and the error to keep with the update.
        `stamped`: the person on the row as it was locked."""
        found = await arrival(session, incoming)
        person = found.person
        if stamped != person.id:  # whose update: /xoadulieu blanks the household members' updates
            await inbox.stamp(await session.connection(), row_id, person.id)
        turn = Turn(incoming, session, person, self._settings, self._clock(), self._handbook, self._surveys,
                    conversation=found.conversation, conversation_loaded=True, refused_follower=found.refused)
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
            person = await self._person(session, incoming)
            await inbox.stamp(await session.connection(), row_id, person.id)  # the rollback took the first away
            turn = Turn(incoming, session, person, self._settings, self._clock(), self._handbook, self._surveys)
            turn.say("internal_error")
            return turn, f"handler: {kind_of(exc)}"[:500]  # the message can quote the person's text
        return turn, ""

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
        """Start on the unhandled updates of chats nobody holds, and of none, kept SETTLED ago or more
        (a newer one is its own process's to start on); `everything` (at start-up): all of them, however
        new. One walk of the pending updates' index. Returns how many updates were found waiting."""
        settled = None if everything else self._clock() - SETTLED
        async with autocommit(self._engine) as connection:
            found = await inbox.left_over(connection, settled, ~self._held_elsewhere(), None if everything else SWEEP_LIMIT)
        chats: dict[ChatRef, None] = {}  # in the order of their oldest update
        for row_id, platform, chat_id in found:
            if chat_id is None:
                self._spawn(self._handle_alone(row_id, None))
            else:
                chats.setdefault(ChatRef(platform, chat_id))
        for chat in chats:
            self._wake(chat, {})
        return len(found)

    def _held_elsewhere(self) -> ColumnElement[bool]:
        """The update's chat is held by a live lease (this process's own included)."""
        if self._leases is None:
            return false()  # this is the only process
        name = literal("chat:") + col(InboxUpdate.platform) + literal(":") + col(InboxUpdate.chat_id)
        return exists().where(col(Lease.name) == name, col(Lease.expires_at) > self._leases.now())

    async def _waiting(self, chat: ChatRef) -> bool:
        async with autocommit(self._engine) as connection:
            return await inbox.has_unhandled(connection, chat.platform, chat.chat_id)

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
            async with autocommit(self._engine) as connection:
                await inbox.keep_unsent(connection, row_id, unsent)
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
        async with autocommit(self._engine) as connection:
            await inbox.mark_sent(connection, done)


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
