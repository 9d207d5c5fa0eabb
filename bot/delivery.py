"""The delivery worker: claims due outbox rows for one channel, sends them under the pacer, and records
each outcome the adapter reports. Also the direct path for replies to the person who just wrote."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import DeliverySettings
from bot.pacing import Pacer
from bot.sending import parts
from handlers.announcements import delivery_message
from handlers.chat import Channel, ChatKind, ChatRef, Outcome, Outgoing, SendResult
from storage import outbox
from storage.models import Announcement, ChatGroup, DeliveryStatus, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds with jitter, so failed sends to many groups do not come back all at once."""
    seconds = min(2**attempts, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


class DeliveryWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channel: Channel,
        pacer: Pacer,
        settings: DeliverySettings,
        *,
        sole_process: bool,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._channel = channel
        self._pacer = pacer
        self._settings = settings
        self._sole_process = sole_process
        self._clock = clock
        self._wake = asyncio.Event()
        self._notices: OrderedDict[int, Announcement] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """New rows were queued: look now rather than at the next poll."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self) -> None:
        if self._sole_process:
            async with self._sessions() as session:
                released = await outbox.release_all_claims(session)
            if released:
                log.info("%s: %d deliveries interrupted by the last stop are due again", self._channel.platform, released)
        limit = self._settings.max_in_flight
        # claim in batches: a query per finished send would cost more than the send at high rates
        refill_at = max(1, limit // 2)
        try:
            while True:
                self._wake.clear()
                free = limit - len(self._tasks)
                claimed = 0
                if free >= refill_at or not self._tasks:
                    claimed = await self._claim(free)
                if claimed and claimed == free:
                    await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                await self._idle(await self._until_next_due() if not claimed else None)
        finally:
            for task in self._tasks:
                task.cancel()

    async def _claim(self, limit: int) -> int:
        lease = timedelta(seconds=self._settings.lease_seconds)
        async with self._sessions() as session:
            claimed = await outbox.claim_due(session, self._channel.platform, self._clock(), limit, lease)
        for row in claimed:
            task = asyncio.create_task(self._deliver(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def _until_next_due(self) -> float:
        async with self._sessions() as session:
            due = await outbox.next_due(session, self._channel.platform)
        if due is None:
            return 5.0
        return min(5.0, max(0.05, (due - self._clock()).total_seconds()))

    async def _idle(self, timeout: float | None) -> None:
        waits: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wake.wait()), *self._tasks}
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                if waiter not in self._tasks:
                    waiter.cancel()

    async def _notice(self, announcement_id: int) -> Announcement:
        notice = self._notices.get(announcement_id)
        if notice is None:
            async with self._sessions() as session:
                notice = await session.get(Announcement, announcement_id)
            assert notice is not None, announcement_id
            self._notices[announcement_id] = notice
            if len(self._notices) > 256:
                self._notices.popitem(last=False)
        return notice

    async def _deliver(self, row: outbox.Claimed) -> None:
        try:
            await self._deliver_parts(row)
        except Exception:
            log.exception("delivery %d failed unexpectedly; it will be retried", row.delivery_id)
            await self._retry_later(row, "internal error")

    async def _deliver_parts(self, row: outbox.Claimed) -> None:
        notice = await self._notice(row.announcement_id)
        chat = ChatRef(self._channel.platform, row.chat_id)
        plan = parts(delivery_message(notice, chat), self._channel)
        done = row.parts_sent
        while done < len(plan):
            async with self._pacer.send_slot(chat, is_group=True):
                result = await self._channel.send(replace(plan[done], chat=chat))
            if result.outcome is Outcome.SENT:
                done += 1
                await self._record_part(row, done, len(plan), result)
            elif result.outcome is Outcome.MIGRATED and result.new_chat_id:
                chat = await self._move(row, result.new_chat_id)
            else:
                await self._record_failure(row, chat, result)
                return

    async def _record_part(self, row: outbox.Claimed, done: int, total: int, result: SendResult) -> None:
        async with self._sessions() as session:
            if done < total:
                await outbox.record(session, row.delivery_id, parts_sent=done)
            else:
                await outbox.record(
                    session,
                    row.delivery_id,
                    status=DeliveryStatus.SENT,
                    parts_sent=done,
                    message_id=result.message_id,
                    sent_at=self._clock(),
                    lease_until=None,
                )

    async def _move(self, row: outbox.Claimed, new_chat_id: str) -> ChatRef:
        async with self._sessions() as session:
            group = await session.get(ChatGroup, row.group_id)
            assert group is not None
            await outbox.move_chat(session, group, new_chat_id)
            await session.commit()
        log.info("group %d moved to chat %s", row.group_id, new_chat_id)
        return ChatRef(self._channel.platform, new_chat_id)

    async def _record_failure(self, row: outbox.Claimed, chat: ChatRef, result: SendResult) -> None:
        async with self._sessions() as session:
            if result.outcome is Outcome.THROTTLED:
                self._pacer.hold(chat, result.retry_after)
                await outbox.record(
                    session,
                    row.delivery_id,
                    status=DeliveryStatus.PENDING,
                    not_before=self._clock() + timedelta(seconds=result.retry_after),
                    lease_until=None,
                    last_error=result.detail,
                )
            elif result.outcome is Outcome.STOPPED:
                await outbox.stop_group(session, row.group_id, result.detail)
                await session.commit()
            elif result.outcome is Outcome.REJECTED:
                await outbox.record(
                    session, row.delivery_id, status=DeliveryStatus.FAILED, lease_until=None, last_error=result.detail
                )
            else:
                await self._retry_later(row, result.detail, session)

    async def _retry_later(self, row: outbox.Claimed, reason: str, session: AsyncSession | None = None) -> None:
        attempts = row.attempts + 1
        if attempts >= self._settings.max_attempts:
            values: dict[str, object] = {"status": DeliveryStatus.FAILED}
        else:
            values = {"status": DeliveryStatus.PENDING, "not_before": self._clock() + backoff(attempts)}
        values.update(attempts=attempts, lease_until=None, last_error=reason[:500])
        if session is not None:
            await outbox.record(session, row.delivery_id, **values)
            return
        async with self._sessions() as own:
            await outbox.record(own, row.delivery_id, **values)


async def send_direct(channel: Channel, pacer: Pacer, out: Outgoing, kind: ChatKind, tries: int = 3) -> bool:
    """A reply to someone who is chatting with the bot: ahead of bulk delivery, a few quick retries."""
    chat = out.chat
    for part in parts(out, channel):
        for attempt in range(tries):
            async with pacer.send_slot(chat, is_group=kind is ChatKind.GROUP, urgent=True):
                result = await channel.send(replace(part, chat=chat))
            if result.outcome is Outcome.SENT:
                break
            if result.outcome is Outcome.MIGRATED and result.new_chat_id:
                chat = ChatRef(chat.platform, result.new_chat_id)
            elif result.outcome is Outcome.THROTTLED:
                pacer.hold(chat, result.retry_after)
            elif result.outcome is Outcome.FAILED:
                await asyncio.sleep(0.5 * (attempt + 1))
            else:
                log.warning("reply to %s not sent: %s %s", chat, result.outcome, result.detail)
                return False
        else:
            log.warning("reply to %s not sent after %d tries", chat, tries)
            return False
    return True
