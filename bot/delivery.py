"""The delivery worker: claims due outbox rows for one channel, sends them under the pacer, and records
each outcome the adapter reports. Also the direct path for replies to the person who just wrote."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import DeliverySettings
from bot.media import MediaFiles
from bot.metrics import Metrics
from bot.pacing import Pacer
from bot.sending import parts
from handlers.announcements import delivery_message
from handlers.chat import Channel, ChatKind, ChatRef, Outcome, Outgoing, SendResult
from handlers.notices import REFUSED
from handlers.surveys.answering import LINK_PREFIX
from messages import label, render
from storage import outbox
from storage.autocommit import autocommit
from storage.db import session_factory
from storage.models import Announcement, ChatGroup, Delivery, DeliveryStatus, Identity, Place, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds with jitter, so failed sends to many groups do not come back all at once."""
    seconds = min(2**attempts, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret


class Recorder:
    """Writes delivery outcomes in batches: whatever finished while the last batch was being written
    goes in the next one (group commit). A delivery counts as in flight, and keeps its worker slot,
    until its outcome is on disk, so a crash can repeat at most `max_in_flight` sends."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: list[tuple[dict[str, object], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()

    async def record(self, delivery_id: int, **values: object) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(({"delivery_id": delivery_id, **values}, done))
        self._wake.set()
        await done

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._waiting = self._waiting, []
            try:
                # a bare connection: at hundreds of batches a second an ORM session is the slow part; each
                # row's change is whole in one statement, so they need no transaction around them
                async with autocommit(self._engine) as connection:
                    by_columns: dict[frozenset[str], list[dict[str, object]]] = {}
                    for change, _ in batch:
                        by_columns.setdefault(frozenset(change), []).append(change)
                    for changes in by_columns.values():
                        await outbox.record_many(connection, changes)
            except Exception as exc:
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for _, done in batch:
                done.set_result(None)


class DeliveryWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        channel: Channel,
        pacer: Pacer,
        settings: DeliverySettings,
        *,
        sole_process: bool,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
        media: MediaFiles | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)
        self._channel = channel
        self._pacer = pacer
        self._settings = settings
        self._sole_process = sole_process
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._wake = asyncio.Event()
        # notice -> its calls for a group (False) and for a follower's private chat (True)
        self._plans: OrderedDict[int, asyncio.Future[dict[bool, list[Outgoing]]]] = OrderedDict()
        self._media = media
        self._uploads: dict[int, int] = {}  # notice -> the stored file its plan uploads (until it has an id here)
        self._uploading = asyncio.Lock()  # the first send of a file uploads it; the others wait for its id
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: set[int] = set()  # the deliveries this process has claimed and not yet recorded
        self._queued: deque[outbox.Claimed] = deque()  # claimed, waiting for a free slot, in due order
        self._recorder = Recorder(engine)
        self._stopping = False

    def wake(self) -> None:
        """New rows were queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        if self._sole_process:
            async with self._sessions() as session:
                released = await outbox.release_all_claims(session)
            if released:
                log.info("%s: %d deliveries interrupted by the last stop are due again", self._channel.platform, released)
        recorder = asyncio.create_task(self._recorder.run())
        renewer = None if self._sole_process else asyncio.create_task(self._renew_leases())
        reclaimed_at = 0.0
        quiet_until = 0.0  # everything due was claimed: no claim needed before this, unless woken
        limit = self._settings.max_in_flight
        try:
            while not self._stopping:
                if self._wake.is_set():
                    self._wake.clear()
                    quiet_until = 0.0
                try:
                    now = asyncio.get_running_loop().time()
                    if not self._sole_process and now - reclaimed_at > self._settings.lease_seconds / 2:
                        reclaimed_at, quiet_until = now, 0.0  # rows of a dead process may be due again
                        async with self._sessions() as session:
                            await outbox.reclaim_expired(session, self._clock())
                    # claimed ahead, a batch at a time: a slot freed by a send waits for no query, and
                    # there is no query per finished send (at hundreds a second they cost more than sends)
                    looked = len(self._queued) <= limit // 2 and now >= quiet_until
                    claimed = await self._claim(limit) if looked else 0
                    self._start_queued()
                    if looked and claimed < limit:
                        quiet_until = now + await self._until_next_due()
                    # until a send finishes, something is queued, or the next row falls due
                    await self._idle(quiet_until - now if quiet_until > now else None)
                except Exception:  # the database went away for a moment: the outbox waits for it
                    log.exception("%s delivery: claiming failed; trying again shortly", self._channel.platform)
                    await asyncio.sleep(2.0)
            await self._release_queued()
            # a stop lets the sends in flight finish and their outcomes reach the disk, so nothing is
            # cancelled half-way through a database call
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self._settings.lease_seconds)
        finally:
            for task in self._tasks:
                task.cancel()
            recorder.cancel()
            if renewer is not None:
                renewer.cancel()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _claim(self, limit: int) -> int:
        lease = timedelta(seconds=self._settings.lease_seconds)
        async with autocommit(self._engine) as connection:  # one statement: no BEGIN and COMMIT round trips
            claimed = await outbox.claim_due(connection, self._channel.platform, self._clock(), limit, lease)
        for row in claimed:
            if row.delivery_id in self._held:  # its lease lapsed (the database was away) while still ours
                continue
            self._held.add(row.delivery_id)
            self._queued.append(row)
        return len(claimed)

    def _start_queued(self) -> None:
        """Claimed rows start while fewer than max_in_flight are between their send and their record:
        only those can be sent twice after a crash (a claimed row not yet sent is claimed again)."""
        while self._queued and len(self._tasks) < self._settings.max_in_flight and not self._stopping:
            task = asyncio.create_task(self._deliver(self._queued.popleft()))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._start_queued()

    async def _release_queued(self) -> None:
        """At a stop, the rows claimed and not yet started are due again at once, for the next process."""
        waiting = sorted(row.delivery_id for row in self._queued)
        self._queued.clear()
        if not waiting:
            return
        try:
            async with self._engine.begin() as connection:
                await outbox.release(connection, waiting)
        except Exception as exc:  # the database is away: their leases run out instead
            log.warning("%s delivery: releasing %d claims failed (%s)", self._channel.platform, len(waiting),
                        type(exc).__name__)
        self._held.difference_update(waiting)

    async def _renew_leases(self) -> None:
        """Every third of a lease, the leases of every delivery still held are renewed: a send waiting
        in the pacer longer than a lease (a 429's long retry_after) is not taken by another process
        while this one lives; the bound "duplicates ≤ sends in flight at a crash" holds."""
        lease = timedelta(seconds=self._settings.lease_seconds)
        while True:
            await asyncio.sleep(self._settings.lease_seconds / 3)
            if not self._held:
                continue
            try:
                async with self._engine.begin() as connection:
                    await outbox.renew(connection, sorted(self._held), self._clock() + lease)
            except Exception as exc:  # the database is away: so is every other process's reclaim
                log.warning("%s delivery: renewing leases failed (%s)", self._channel.platform, type(exc).__name__)

    async def _until_next_due(self) -> float:
        async with self._sessions() as session:
            due = await outbox.next_due(session, self._channel.platform)
        if due is None:
            return 5.0
        return min(5.0, max(0.05, (due - self._clock()).total_seconds()))

    async def _idle(self, timeout: float | None) -> None:  # noqa: ASYNC109 - the wake-up event or this, whichever first
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([wake, *self._tasks], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()  # the sends are not ours to cancel

    async def _plan(self, announcement_id: int, private: bool) -> list[Outgoing]:
        """The calls one notice needs, made once per notice rather than once per group: the sends that
        start together wait for one plan (and one fetch of its file). A plan that failed is made again."""
        plan = self._plans.get(announcement_id)
        if plan is None:
            plan = self._plans[announcement_id] = asyncio.ensure_future(self._make_plan(announcement_id))
            if len(self._plans) > 256:
                self._plans.popitem(last=False)
        try:
            return (await asyncio.shield(plan))[private]
        except Exception:
            if self._plans.get(announcement_id) is plan:
                del self._plans[announcement_id]
            raise

    async def _make_plan(self, announcement_id: int) -> dict[bool, list[Outgoing]]:
        async with self._sessions() as session:
            notice = await session.get(Announcement, announcement_id)
        assert notice is not None, announcement_id
        link = self._channel.deep_link(f"{LINK_PREFIX}{notice.campaign_id}") if notice.campaign_id else None
        platform = self._channel.platform
        carried = None
        if self._media is not None and notice.attachment_ref and notice.attachment_platform != platform:
            carried = await self._media.carry(notice, self._channel)  # a file written on another platform
        if carried is None:
            return {p: parts(delivery_message(notice, ChatRef(platform, ""), link, private=p), self._channel)
                    for p in (False, True)}
        if carried.upload is not None and carried.media_id is not None:
            self._uploads[announcement_id] = carried.media_id
        plans = {}
        for private in (False, True):
            out = delivery_message(notice, ChatRef(platform, ""), link, file_link=carried.link,
                                   file_name=carried.file_name, private=private)
            plans[private] = parts(replace(out, attachment=carried.attachment, upload=carried.upload), self._channel)
        return plans

    async def _send_part(self, row: outbox.Claimed, done: int, chat: ChatRef, is_group: bool) -> SendResult:
        """One call of the notice's plan. A file still to upload goes up once: the other sends of the
        notice wait for the id the platform gives it, and send that."""
        part = (await self._plan(row.announcement_id, row.group_id is None))[done]
        if part.upload is None or row.announcement_id not in self._uploads:
            async with self._pacer.send_slot(chat, is_group=is_group):
                return await self._channel.send(replace(part, chat=chat))
        async with self._uploading:
            part = (await self._plan(row.announcement_id, row.group_id is None))[done]  # the id may have come meanwhile
            async with self._pacer.send_slot(chat, is_group=is_group):
                result = await self._channel.send(replace(part, chat=chat))
            media_id = self._uploads.get(row.announcement_id)
            if part.upload is not None and result.file_ref and media_id is not None and self._media is not None:
                await self._media.remember(media_id, self._channel.platform, result.file_ref)
                self._uploads.pop(row.announcement_id, None)
                self._plans.pop(row.announcement_id, None)  # made again, with the id
            return result

    async def _deliver(self, row: outbox.Claimed) -> None:
        try:
            outcome = await self._deliver_parts(row)
        except Exception:
            log.exception("delivery %d failed unexpectedly; it will be retried", row.delivery_id)
            outcome = Outcome.FAILED
            await self._retry_later(row, "internal error")
        finally:
            self._held.discard(row.delivery_id)
        self._metrics.delivered(self._channel.platform, outcome)

    async def _deliver_parts(self, row: outbox.Claimed) -> Outcome:
        plan = await self._plan(row.announcement_id, row.group_id is None)
        chat = ChatRef(self._channel.platform, row.chat_id)
        done = row.parts_sent
        while done < len(plan):
            result = await self._send_part(row, done, chat, is_group=row.group_id is not None)
            if result.outcome is Outcome.SENT:
                done += 1
                await self._record_part(row, done, len(plan), result)
            elif result.outcome is Outcome.MIGRATED and result.new_chat_id and row.group_id is not None:
                chat = await self._move(row, result.new_chat_id)
            else:
                await self._record_failure(row, chat, result)
                return result.outcome
        return Outcome.SENT

    async def _record_part(self, row: outbox.Claimed, done: int, total: int, result: SendResult) -> None:
        if done < total:
            await self._recorder.record(row.delivery_id, parts_sent=done)
            return
        await self._recorder.record(
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
        if result.outcome is Outcome.THROTTLED:
            self._pacer.hold(chat, result.retry_after)
            await self._recorder.record(
                row.delivery_id,
                status=DeliveryStatus.PENDING,
                not_before=self._clock() + timedelta(seconds=result.retry_after),
                lease_until=None,
                last_error=result.detail[:500],
            )
        elif result.outcome is Outcome.STOPPED:
            async with self._sessions() as session:
                if row.group_id is not None:
                    await outbox.stop_group(session, row.group_id, result.detail[:500])
                else:  # a follower who blocked the bot: not retried, not targeted until they write again
                    assert row.follower_id is not None
                    await outbox.stop_follower(session, row.follower_id, result.detail[:500], self._clock())
                await session.commit()
        elif result.outcome is Outcome.REJECTED:
            await self._refused(row, result)
        else:
            await self._retry_later(row, result.detail)

    async def _refused(self, row: outbox.Claimed, result: SendResult) -> None:
        """The platform refuses the notice itself, so no retry will help: the delivery fails, and the
        notice's author hears of it in a private chat, once per notice however many groups refuse it."""
        async with self._sessions() as session:
            first = await _mark_refused(session, row, result.detail)
            message = await self._refusal_message(session, row, result) if first else None
            await session.commit()
        if message is None:
            return
        try:  # the refusal is on disk: a failure here must not send the notice to the group again
            await send_direct(self._channel, self._pacer, message, ChatKind.PRIVATE, urgent=False)
        except Exception:
            log.exception("notice %d: telling its author about a refusal failed", row.announcement_id)

    async def _refusal_message(self, session: AsyncSession, row: outbox.Claimed, result: SendResult) -> Outgoing | None:
        notice = await session.get(Announcement, row.announcement_id)
        delivery = await session.get(Delivery, row.delivery_id)
        group = await session.get(ChatGroup, row.group_id) if row.group_id is not None else None
        assert notice is not None
        assert delivery is not None
        author = await session.exec(
            select(Identity.user_id)
            .where(Identity.person_id == notice.author_id, Identity.platform == self._channel.platform)
            .order_by(col(Identity.id))
        )
        user_id = author.first()
        if user_id is None:  # the author writes on another platform, which this worker cannot reach
            log.info("notice %d refused (delivery %d); its author has no chat on %s", notice.id, row.delivery_id,
                     self._channel.platform)
            return None
        place_id = group.place_id if group is not None else delivery.place_id
        place = await session.get(Place, place_id) if place_id else None
        text = render(
            "notice_refused",
            number=notice.parent_id or notice.id,  # a recurring notice's occurrences go by its number
            place=place.name if place else "",
            group=group.title if group is not None else None,  # None: a follower's private chat
            platform=label(self._channel.platform),
            too_long="too long" in result.detail.lower(),  # both platforms' wording for a text over the limit
        )
        return Outgoing(ChatRef(self._channel.platform, user_id), text)

    async def _retry_later(self, row: outbox.Claimed, reason: str) -> None:
        attempts = row.attempts + 1
        if attempts >= self._settings.max_attempts:
            values: dict[str, object] = {"status": DeliveryStatus.FAILED}
        else:
            values = {"status": DeliveryStatus.PENDING, "not_before": self._clock() + backoff(attempts)}
        await self._recorder.record(row.delivery_id, attempts=attempts, lease_until=None, last_error=reason[:500], **values)


async def _mark_refused(session: AsyncSession, row: outbox.Claimed, detail: str) -> bool:
    """Fail a refused delivery; True if it is the first of its notice to be refused. The notice row is
    locked first, so two processes refusing two groups of one notice at once agree on which was first
    (SQLite: the transaction holds the only write lock anyway)."""
    await session.exec(select(Announcement.id).where(Announcement.id == row.announcement_id).with_for_update())
    earlier = await session.exec(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.announcement_id == row.announcement_id,
            Delivery.status == DeliveryStatus.FAILED,
            col(Delivery.last_error).startswith(REFUSED),
        )
    )
    await session.exec(
        update(Delivery)
        .where(col(Delivery.id) == row.delivery_id)
        .values(status=DeliveryStatus.FAILED, lease_until=None, last_error=f"{REFUSED}{detail}"[:500])
    )
    return earlier.one() == 0


async def send_direct(
    channel: Channel, pacer: Pacer, out: Outgoing, kind: ChatKind, tries: int = 3, *, urgent: bool = True
) -> Outcome:
    """A message to one chat with a few quick retries: a reply to someone who is chatting with the bot
    goes ahead of bulk delivery (urgent); a reminder waits its turn. SENT, or why it was not: FAILED and
    THROTTLED may succeed later, STOPPED and REJECTED will not."""
    chat = out.chat
    for part in parts(out, channel):
        for attempt in range(tries):
            async with pacer.send_slot(chat, is_group=kind is ChatKind.GROUP, urgent=urgent):
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
                return result.outcome
        else:
            log.warning("reply to %s not sent after %d tries", chat, tries)
            return result.outcome
    return Outcome.SENT
